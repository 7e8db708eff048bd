using System.Text;

namespace Connectias.Sandbox.Runtime;

/// <summary>
/// Turns a plugin's log calls and WASI stdout/stderr bytes into bounded log lines. A plugin cannot
/// flood the daemon's log: lines are cut at <see cref="MaxLineBytes"/> and each call may write at most
/// <see cref="MaxBytesPerCall"/> before further lines are dropped (with one notice saying so).
/// WASI output arrives on a Wasmtime thread, hence the lock.
/// </summary>
internal sealed class PluginLogWriter(IPluginLog sink)
{
    public const int MaxLineBytes = 8 * 1024;
    public const long MaxBytesPerCall = 1024 * 1024;

    private readonly Lock _lock = new();
    private readonly MemoryStream _stdout = new();
    private readonly MemoryStream _stderr = new();
    private long _bytesThisCall;
    private bool _droppedThisCall;

    public void Write(PluginLogLevel level, ReadOnlySpan<byte> message)
    {
        lock (_lock) Emit(level, PluginLogSource.Log, message);
    }

    public void WriteStream(PluginLogSource source, ReadOnlySpan<byte> bytes)
    {
        lock (_lock)
        {
            var buffer = source == PluginLogSource.Stdout ? _stdout : _stderr;
            var level = source == PluginLogSource.Stdout ? PluginLogLevel.Info : PluginLogLevel.Warning;
            while (bytes.Length > 0)
            {
                var newline = bytes.IndexOf((byte)'\n');
                if (newline < 0)
                {
                    var room = (int)Math.Max(0, MaxLineBytes - buffer.Length);
                    buffer.Write(bytes[..Math.Min(room, bytes.Length)]);
                    if (buffer.Length >= MaxLineBytes) Flush(buffer, source, level);
                    return;
                }

                buffer.Write(bytes[..Math.Min(newline, (int)Math.Max(0, MaxLineBytes - buffer.Length))]);
                Flush(buffer, source, level);
                bytes = bytes[(newline + 1)..];
            }
        }
    }

    /// <summary>Ends a call: emits unterminated output and opens a fresh per-call budget.</summary>
    public void EndCall()
    {
        lock (_lock)
        {
            if (_stdout.Length > 0) Flush(_stdout, PluginLogSource.Stdout, PluginLogLevel.Info);
            if (_stderr.Length > 0) Flush(_stderr, PluginLogSource.Stderr, PluginLogLevel.Warning);
            _bytesThisCall = 0;
            _droppedThisCall = false;
        }
    }

    private void Flush(MemoryStream buffer, PluginLogSource source, PluginLogLevel level)
    {
        Emit(level, source, buffer.GetBuffer().AsSpan(0, (int)buffer.Length));
        buffer.SetLength(0);
    }

    private void Emit(PluginLogLevel level, PluginLogSource source, ReadOnlySpan<byte> message)
    {
        if (message.Length > MaxLineBytes) message = message[..MaxLineBytes];
        _bytesThisCall += message.Length;
        if (_bytesThisCall > MaxBytesPerCall)
        {
            if (!_droppedThisCall) sink.Write(PluginLogLevel.Warning, source, $"log limit of {MaxBytesPerCall} bytes per call reached; further lines of this call are dropped");
            _droppedThisCall = true;
            return;
        }

        sink.Write(level, source, Encoding.UTF8.GetString(message).TrimEnd('\r'));
    }
}
