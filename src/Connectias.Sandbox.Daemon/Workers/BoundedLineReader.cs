using System.Text;

namespace Connectias.Sandbox.Daemon.Workers;

/// <summary>
/// Lines from a worker's stream, each at most <c>maxChars</c> long: the rest of a longer line is read and dropped,
/// never held. A child is not trusted to end its lines (a 1 GiB line once took the daemon to 4.2 GB).
/// </summary>
internal sealed class BoundedLineReader(TextReader reader, int maxChars)
{
    private readonly char[] _buffer = new char[8192];
    private int _start;
    private int _end;

    /// <summary>The next line (without its end) and how many characters of it were dropped; null at the end.</summary>
    public async ValueTask<(string Line, long Dropped)?> ReadLineAsync(CancellationToken cancellation = default)
    {
        var line = new StringBuilder();
        long dropped = 0;
        while (true)
        {
            if (_start == _end)
            {
                _start = 0;
                _end = await reader.ReadAsync(_buffer.AsMemory(), cancellation);
                if (_end == 0) return line.Length + dropped > 0 ? (line.ToString(), dropped) : null;
            }

            var newline = Array.IndexOf(_buffer, '\n', _start, _end - _start);
            var stop = newline < 0 ? _end : newline;
            var kept = Math.Min(stop - _start, maxChars - line.Length);
            line.Append(_buffer, _start, kept);
            dropped += stop - _start - kept;
            _start = newline < 0 ? _end : newline + 1;
            if (newline >= 0) return (line.ToString().TrimEnd('\r'), dropped);
        }
    }
}
