using System.Globalization;
using System.Text;

namespace Connectias.Sandbox.Runtime;

/// <summary>
/// Turns a plugin's <c>log</c> calls and its stdout/stderr bytes into log lines within its budgets, here where the
/// lines are made, so a flood costs nothing downstream. A line is cut at <see cref="MaxLineBytes"/>; every line,
/// an empty one too, counts against a per-call and a per-minute budget of lines and of bytes
/// (<see cref="PluginBudgets"/>). Lines over a budget are dropped and counted, and one summary line says how many
/// and over which budget: at the end of the call for the call's budget, when the minute is over for the minute's.
/// The minute is a fixed window opened by the first line after the previous one ended, so an idle plugin has no timer.
/// </summary>
internal sealed class PluginLogWriter
{
    public const int MaxLineBytes = PluginBudgets.MaxLogLineBytes;
    public static readonly TimeSpan Window = TimeSpan.FromMinutes(1);

    private readonly IPluginLog _sink;
    private readonly TimeProvider _clock;
    private readonly Lock _lock = new(); // the WASI output callbacks of Wasmtime run on a thread of its own
    private readonly PendingLine _stdout = new();
    private readonly PendingLine _stderr = new();
    private readonly LogAllowance _call;
    private readonly LogAllowance _minute;
    private long? _windowOpened;
    private DateTimeOffset _windowOpenedAt;
    private long _callLinesFolded; // lines over a call's budget whose summary did not fit in the minute's
    private long _callBytesFolded;

    public PluginLogWriter(IPluginLog sink, PluginBudgets budgets, TimeProvider? clock = null)
    {
        _sink = sink;
        _clock = clock ?? TimeProvider.System;
        _call = new LogAllowance(budgets.LogLinesPerCall, budgets.LogBytesPerCall);
        _minute = new LogAllowance(budgets.LogLinesPerMinute, budgets.LogBytesPerMinute);
    }

    /// <summary>One <c>log</c> call: one line, whatever it holds.</summary>
    public void Write(PluginLogLevel level, ReadOnlySpan<byte> message)
    {
        lock (_lock)
        {
            OpenWindow();
            Offer(level, PluginLogSource.Log, message[..Math.Min(message.Length, MaxLineBytes)], message.Length);
        }
    }

    /// <summary>Bytes written to stdout or stderr: a line ends at each newline; the last, unfinished one waits for more.</summary>
    public void WriteStream(PluginLogSource source, ReadOnlySpan<byte> bytes)
    {
        lock (_lock)
        {
            OpenWindow();
            var pending = source == PluginLogSource.Stdout ? _stdout : _stderr;
            while (!bytes.IsEmpty)
            {
                if (SpentAllowance() is { } spent)
                {
                    DropInBulk(spent, pending, bytes);
                    return;
                }

                var newline = bytes.IndexOf((byte)'\n');
                if (newline < 0)
                {
                    pending.Append(bytes);
                    return;
                }

                pending.Append(bytes[..newline]);
                EndLine(source, pending);
                bytes = bytes[(newline + 1)..];
            }
        }
    }

    /// <summary>Ends a call: emits unfinished output, the call's summary if it dropped lines, and opens a fresh per-call budget.</summary>
    public void EndCall()
    {
        lock (_lock)
        {
            if (_stdout.WrittenBytes > 0) EndLine(PluginLogSource.Stdout, _stdout);
            if (_stderr.WrittenBytes > 0) EndLine(PluginLogSource.Stderr, _stderr);
            CloseWindowIfOver();
            if (_call.DroppedLines > 0)
            {
                OpenWindow(); // a minute that ended during the call was summed up already; the summary counts in the next
                SummarizeCall();
            }

            _call.Reset();
        }
    }

    /// <summary>Nothing of the plugin runs after this (its cleanup at unload): the open minute's summary, if it dropped lines, comes now.</summary>
    public void Finish()
    {
        lock (_lock) CloseWindow(onlyIfOver: false);
    }

    private void EndLine(PluginLogSource source, PendingLine line)
    {
        Offer(source == PluginLogSource.Stdout ? PluginLogLevel.Info : PluginLogLevel.Warning, source, line.Kept, line.WrittenBytes);
        line.Clear();
    }

    /// <summary>Emits one line (cut to <paramref name="kept"/>) if both budgets have room, else drops it over the first that has none.</summary>
    private void Offer(PluginLogLevel level, PluginLogSource source, ReadOnlySpan<byte> kept, long writtenBytes)
    {
        var over = SpentAllowance()
                   ?? (!_minute.Fits(kept.Length) ? _minute : null)
                   ?? (!_call.Fits(kept.Length) ? _call : null);
        if (over is not null)
        {
            over.Drop(1, writtenBytes);
            return;
        }

        _minute.Take(kept.Length);
        _call.Take(kept.Length);
        _sink.Write(level, source, Encoding.UTF8.GetString(kept).TrimEnd('\r'));
    }

    /// <summary>The minute's budget first: it outlasts the call, so its drops are summed up once per minute, not once per call.</summary>
    private LogAllowance? SpentAllowance() => _minute.IsSpent ? _minute : _call.IsSpent ? _call : null;

    /// <summary>
    /// Counts the lines ended in <paramref name="bytes"/> as dropped without looking at each: 64 MiB of newlines costs
    /// one vectorised count, not 64 million lines. Their bytes are the bytes written, newlines left out.
    /// </summary>
    private static void DropInBulk(LogAllowance spent, PendingLine pending, ReadOnlySpan<byte> bytes)
    {
        var lastNewline = bytes.LastIndexOf((byte)'\n');
        if (lastNewline < 0)
        {
            pending.Append(bytes); // still one unfinished line; it is counted when it ends
            return;
        }

        var ended = bytes[..(lastNewline + 1)];
        var lines = ended.Count((byte)'\n');
        spent.Drop(lines, pending.WrittenBytes + ended.Length - lines);
        pending.Clear();
        pending.Append(bytes[(lastNewline + 1)..]);
    }

    /// <summary>The call's summary is a line of the minute's budget; when that has no room its counts join the minute's summary.</summary>
    private void SummarizeCall()
    {
        var summary = string.Create(CultureInfo.InvariantCulture,
            $"log budget of a call spent: {_call.DroppedLines} lines ({_call.DroppedBytes} bytes) of this call dropped; a call may log {_call.MaxLines} lines and {_call.MaxBytes} bytes (Sandbox:PluginLogLinesPerCall, Sandbox:PluginLogBytesPerCall)");
        var bytes = Encoding.UTF8.GetByteCount(summary);
        if (_minute.Fits(bytes))
        {
            _minute.Take(bytes);
            _sink.Write(PluginLogLevel.Warning, PluginLogSource.LogBudget, summary);
            return;
        }

        _callLinesFolded += _call.DroppedLines;
        _callBytesFolded += _call.DroppedBytes;
        _minute.Drop(_call.DroppedLines, _call.DroppedBytes);
    }

    private void OpenWindow()
    {
        CloseWindowIfOver();
        if (_windowOpened is not null) return;
        _windowOpened = _clock.GetTimestamp();
        _windowOpenedAt = _clock.GetUtcNow();
    }

    private void CloseWindowIfOver() => CloseWindow(onlyIfOver: true);

    /// <summary>Once the minute is over: its summary, if it dropped lines (the one line a window may hold beyond its budget).</summary>
    private void CloseWindow(bool onlyIfOver)
    {
        if (_windowOpened is not { } opened || (onlyIfOver && _clock.GetElapsedTime(opened) < Window)) return;
        if (_minute.DroppedLines > 0)
        {
            var ofCalls = _callLinesFolded == 0 ? "" : $", {_callLinesFolded} of them ({_callBytesFolded} bytes) over a call's budget";
            _sink.Write(PluginLogLevel.Warning, PluginLogSource.LogBudget, string.Create(CultureInfo.InvariantCulture,
                $"log budget of a minute spent: {_minute.DroppedLines} lines ({_minute.DroppedBytes} bytes) dropped in the minute from {_windowOpenedAt:yyyy-MM-dd'T'HH:mm:ss'Z'}{ofCalls}; a plugin may log {_minute.MaxLines} lines and {_minute.MaxBytes} bytes a minute (Sandbox:PluginLogLinesPerMinute, Sandbox:PluginLogBytesPerMinute)"));
        }

        _minute.Reset();
        _callLinesFolded = 0;
        _callBytesFolded = 0;
        _windowOpened = null;
    }

    /// <summary>An unfinished stdout or stderr line: its first <see cref="MaxLineBytes"/> kept, every byte counted.</summary>
    private sealed class PendingLine
    {
        private readonly MemoryStream _kept = new();

        public long WrittenBytes { get; private set; }

        public ReadOnlySpan<byte> Kept => _kept.GetBuffer().AsSpan(0, (int)_kept.Length);

        public void Append(ReadOnlySpan<byte> bytes)
        {
            WrittenBytes += bytes.Length;
            var room = MaxLineBytes - (int)_kept.Length;
            if (room > 0) _kept.Write(bytes[..Math.Min(room, bytes.Length)]);
        }

        public void Clear()
        {
            _kept.SetLength(0);
            WrittenBytes = 0;
        }
    }
}
