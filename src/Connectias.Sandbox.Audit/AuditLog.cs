using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace Connectias.Sandbox.Audit;

/// <summary>The audit events of SPEC §6.</summary>
public static class AuditEvents
{
    public const string PluginLoad = "PLUGIN_LOAD";
    public const string LoadRejected = "LOAD_REJECTED";
    public const string PermissionGrant = "PERMISSION_GRANT";
    public const string PluginExecuteFailed = "PLUGIN_EXECUTE_FAILED";
    public const string SecurityViolation = "SECURITY_VIOLATION";
    public const string ResourceExhaustion = "RESOURCE_EXHAUSTION";
    public const string PluginTerminated = "PLUGIN_TERMINATED";
    public const string PluginCrashed = "PLUGIN_CRASHED";
    public const string PluginRestarted = "PLUGIN_RESTARTED";
    public const string PluginUnload = "PLUGIN_UNLOAD";
    public const string PluginUpgrade = "PLUGIN_UPGRADE";
    public const string AuditChainBroken = "AUDIT_CHAIN_BROKEN";
    public const string CleanupReport = "CLEANUP_REPORT";
    public const string DaemonStart = "DAEMON_START";
    public const string DaemonStop = "DAEMON_STOP";

    /// <summary>Written at start when the log ended inside a record (a crash or a full disk cut a write short) and that record was cut off.</summary>
    public const string AuditLogRecovered = "AUDIT_LOG_RECOVERED";

    /// <summary>The first record written after the log could not be written for a while: how many records were lost.</summary>
    public const string AuditLogResumed = "AUDIT_LOG_RESUMED";
}

/// <summary>One written record, as the daemon publishes it to event watchers.</summary>
public sealed record AuditRecord(long Seq, string Timestamp, string Event, string PluginId, string DetailsJson, string Previous, string Hash);

/// <summary>
/// Append-only JSON Lines with a hash chain (SPEC §6). Each line is
/// <c>{"seq":N,"ts":"...","event":"...","plugin_id":"...","details":{...},"prev":"&lt;hash of the previous record&gt;","hash":"..."}</c>
/// where <c>hash</c> is the lower-case hex SHA-256 of the line's own bytes without the trailing
/// <c>,"hash":"..."</c> member (that is, of the record serialised without <c>hash</c>). The first record's
/// <c>prev</c> is 64 zeros. Every record is flushed to disk before <see cref="Append"/> returns.
///
/// A record is in the file whole or not at all: a write or flush that fails (a full disk: ENOSPC) is cut off
/// again, so the next record follows the last whole one and the chain stays verifiable. What a crash in the
/// middle of a write leaves behind (bytes after the last newline) is cut off when the log is opened
/// (<see cref="RecoveredAtOpen"/>).
/// </summary>
public sealed class AuditLog : IDisposable
{
    public const string FileName = "audit.jsonl";
    public static readonly string Genesis = new('0', 64);

    private readonly Lock _lock = new();
    private readonly Stream _file;
    private long _seq;
    private string _previous = Genesis;

    /// <summary>The length of the whole records: where the next one starts.</summary>
    private long _length;

    /// <summary>A failed write left bytes after <see cref="_length"/> that could not be cut off yet.</summary>
    private bool _tornTail;

    public AuditLog(string directory)
        : this(directory, path => new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.Read, 1, FileOptions.None))
    {
    }

    /// <param name="directory">Where the log lives; created if missing.</param>
    /// <param name="open">Opens the file to read and write (seekable, its length settable); tests pass a stream that fails as a full disk does.</param>
    internal AuditLog(string directory, Func<string, Stream> open)
    {
        Directory.CreateDirectory(directory);
        Path = System.IO.Path.Combine(directory, FileName);
        _file = open(Path);
        try
        {
            RecoveredAtOpen = DropTornTail();
            ContinueChain();
        }
        catch
        {
            _file.Dispose();
            throw;
        }
    }

    public string Path { get; }

    /// <summary>What opening the log cut off its end (a record a crash or a full disk left unfinished); null when it ended whole.</summary>
    public AuditTailRecovery? RecoveredAtOpen { get; }

    public AuditRecord Append(string auditEvent, string pluginId, Action<Utf8JsonWriter>? writeDetails = null)
    {
        lock (_lock)
        {
            var seq = _seq + 1;
            var timestamp = DateTime.UtcNow.ToString("yyyy-MM-dd'T'HH:mm:ss.ffffff'Z'", System.Globalization.CultureInfo.InvariantCulture);
            var details = DetailsJson(writeDetails);
            using var body = new MemoryStream();
            using (var json = new Utf8JsonWriter(body))
            {
                json.WriteStartObject();
                json.WriteNumber("seq", seq);
                json.WriteString("ts", timestamp);
                json.WriteString("event", auditEvent);
                json.WriteString("plugin_id", pluginId);
                json.WritePropertyName("details");
                json.WriteRawValue(details, skipInputValidation: true);
                json.WriteString("prev", _previous);
                json.WriteEndObject();
            }

            var withoutHash = body.ToArray();
            var hash = Hash(withoutHash);
            // The record without hash, its closing brace replaced by the hash member: {...,"prev":"..","hash":".."}
            var suffix = Encoding.ASCII.GetBytes($",\"hash\":\"{hash}\"}}\n");
            var line = new byte[withoutHash.Length - 1 + suffix.Length];
            withoutHash.AsSpan(0, withoutHash.Length - 1).CopyTo(line);
            suffix.CopyTo(line, withoutHash.Length - 1);
            WriteWhole(line);
            _seq = seq;
            var record = new AuditRecord(seq, timestamp, auditEvent, pluginId, details, _previous, hash);
            _previous = hash;
            return record;
        }
    }

    public void Dispose() => _file.Dispose();

    /// <summary>Writes and flushes <paramref name="line"/> after the last whole record, or leaves the file as it was and throws.</summary>
    private void WriteWhole(byte[] line)
    {
        if (_tornTail)
        {
            Truncate(); // throws again while the junk of an earlier failure cannot be removed: nothing may follow it
            _tornTail = false;
        }

        try
        {
            _file.Position = _length;
            _file.Write(line);
            Flush();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Part of the line may be on disk (ENOSPC after some bytes); a record is there whole or not at all.
            try
            {
                Truncate();
            }
            catch (Exception cut) when (cut is IOException or UnauthorizedAccessException)
            {
                _tornTail = true; // cut off before the next record is written
            }

            throw;
        }

        _length += line.Length;
    }

    private void Truncate()
    {
        _file.SetLength(_length);
        Flush();
    }

    private void Flush()
    {
        if (_file is FileStream file) file.Flush(flushToDisk: true);
        else _file.Flush();
    }

    /// <summary>Cuts off whatever follows the last newline: the start of a record whose write never finished.</summary>
    private AuditTailRecovery? DropTornTail()
    {
        var length = _file.Length;
        _length = AuditFileTail.EndOfLastWholeLine(_file);
        if (_length == length) return null;
        Truncate();
        return new AuditTailRecovery(length - _length, _length);
    }

    /// <summary>Continues the chain from the last record; a damaged one continues it from its bytes and fails verification, visibly.</summary>
    private void ContinueChain()
    {
        if (AuditFileTail.LastLine(_file, _length) is not { } last) return;
        try
        {
            using var document = JsonDocument.Parse(last);
            _seq = document.RootElement.GetProperty("seq").GetInt64();
            _previous = document.RootElement.GetProperty("hash").GetString() ?? Genesis;
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
        {
            _previous = Hash(last);
            _seq = AuditFileTail.CountLines(_file, _length);
        }
    }

    private static string DetailsJson(Action<Utf8JsonWriter>? writeDetails)
    {
        if (writeDetails is null) return "{}";
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject(); // callers write the details' members
            writeDetails(json);
            json.WriteEndObject();
        }

        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    internal static string Hash(ReadOnlySpan<byte> bytes) => Convert.ToHexStringLower(SHA256.HashData(bytes));
}
