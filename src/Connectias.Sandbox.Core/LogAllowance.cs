namespace Connectias.Sandbox;

/// <summary>
/// One log budget (a plugin's per call or per minute, in the worker; a worker's per minute, in the daemon): the lines
/// and bytes it let through, and the lines and bytes dropped over it. Once one line is dropped the budget is spent and drops everything after it, even lines
/// that would still fit: the log keeps a prefix of what the plugin wrote, and a flood past the budget can be counted
/// in bulk instead of line by line.
/// </summary>
public sealed class LogAllowance(int maxLines, long maxBytes)
{
    private bool _dropping;

    public int MaxLines => maxLines;
    public long MaxBytes => maxBytes;
    public int Lines { get; private set; }
    public long Bytes { get; private set; }
    public long DroppedLines { get; private set; }
    public long DroppedBytes { get; private set; }

    public bool IsSpent => _dropping || Lines >= maxLines;

    public bool Fits(long bytes) => !IsSpent && Bytes + bytes <= maxBytes;

    public void Take(long bytes)
    {
        Lines++;
        Bytes += bytes;
    }

    public void Drop(long lines, long bytes)
    {
        _dropping = true;
        DroppedLines += lines;
        DroppedBytes += bytes;
    }

    public void Reset()
    {
        _dropping = false;
        Lines = 0;
        Bytes = 0;
        DroppedLines = 0;
        DroppedBytes = 0;
    }
}
