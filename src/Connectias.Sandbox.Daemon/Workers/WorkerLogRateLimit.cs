using System.Globalization;

namespace Connectias.Sandbox.Daemon.Workers;

/// <summary>
/// The daemon's backstop behind a worker's own log budgets: at most <c>linesPerMinute</c> lines and
/// <c>charsPerMinute</c> characters of one worker's stderr reach the daemon's log in a minute, so a compromised
/// worker that ignores its budgets still cannot flood it. The minute is a fixed window opened by the first line after
/// the previous one ended; once a line is dropped the rest of the window is dropped too, and one summary line says how
/// many, when the next window opens or the stream ends. Used by one reading loop, so not thread-safe.
/// </summary>
internal sealed class WorkerLogRateLimit(int linesPerMinute, long charsPerMinute, TimeProvider clock)
{
    public static readonly TimeSpan Window = TimeSpan.FromMinutes(1);

    private readonly LogAllowance _window = new(linesPerMinute, charsPerMinute);
    private long? _windowOpened;
    private DateTimeOffset _windowOpenedAt;

    /// <summary>True while the current window drops every line: then a line need not even be parsed to be counted.</summary>
    public bool IsDropping => _window.DroppedLines > 0 && !WindowIsOver;

    private bool WindowIsOver => _windowOpened is { } opened && clock.GetElapsedTime(opened) >= Window;

    /// <summary>
    /// Whether a line of <paramref name="chars"/> characters may be relayed; <paramref name="summary"/> is the
    /// summary of the window that just ended, to be logged first, or null.
    /// </summary>
    public bool Admit(long chars, out string? summary)
    {
        CloseWindowIfOver(out summary);
        if (_windowOpened is null)
        {
            _windowOpened = clock.GetTimestamp();
            _windowOpenedAt = clock.GetUtcNow();
        }

        if (!_window.Fits(chars))
        {
            _window.Drop(1, chars);
            return false;
        }

        _window.Take(chars);
        return true;
    }

    /// <summary>At the end of the stream: the summary of the open window, or null when it dropped nothing.</summary>
    public string? Finish()
    {
        var summary = Summary();
        Reset();
        return summary;
    }

    private void CloseWindowIfOver(out string? summary)
    {
        summary = null;
        if (!WindowIsOver) return;
        summary = Summary();
        Reset();
    }

    private void Reset()
    {
        _windowOpened = null;
        _window.Reset();
    }

    private string? Summary() => _window.DroppedLines == 0
        ? null
        : string.Create(CultureInfo.InvariantCulture,
            $"log over the daemon's budget: {_window.DroppedLines} lines ({_window.DroppedBytes} characters) of this worker dropped in the minute from {_windowOpenedAt:yyyy-MM-dd'T'HH:mm:ss'Z'}; a worker may send {linesPerMinute} lines and {charsPerMinute} characters a minute (Sandbox:WorkerLogLinesPerMinute, Sandbox:WorkerLogCharsPerMinute)");
}
