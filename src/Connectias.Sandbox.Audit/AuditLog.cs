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
}

/// <summary>One written record, as the daemon publishes it to event watchers.</summary>
public sealed record AuditRecord(long Seq, string Timestamp, string Event, string PluginId, string DetailsJson, string Previous, string Hash);

/// <summary>
/// Append-only JSON Lines with a hash chain (SPEC §6). Each line is
/// <c>{"seq":N,"ts":"...","event":"...","plugin_id":"...","details":{...},"prev":"&lt;hash of the previous record&gt;","hash":"..."}</c>
/// where <c>hash</c> is the lower-case hex SHA-256 of the line's own bytes without the trailing
/// <c>,"hash":"..."</c> member (that is, of the record serialised without <c>hash</c>). The first record's
/// <c>prev</c> is 64 zeros. Every record is flushed to disk before <see cref="Append"/> returns.
/// </summary>
public sealed class AuditLog : IDisposable
{
    public const string FileName = "audit.jsonl";
    public static readonly string Genesis = new('0', 64);

    private readonly Lock _lock = new();
    private readonly FileStream _file;
    private long _seq;
    private string _previous = Genesis;

    public AuditLog(string directory)
    {
        Directory.CreateDirectory(directory);
        Path = System.IO.Path.Combine(directory, FileName);
        var last = ReadLastLine(Path);
        if (last is not null)
        {
            // Continue the chain from whatever is there; a damaged last line will fail verification, visibly.
            try
            {
                using var document = JsonDocument.Parse(last);
                _seq = document.RootElement.GetProperty("seq").GetInt64();
                _previous = document.RootElement.GetProperty("hash").GetString() ?? Genesis;
            }
            catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException)
            {
                _previous = Hash(Encoding.UTF8.GetBytes(last));
                _seq = CountLines(Path);
            }
        }

        _file = new FileStream(Path, FileMode.Append, FileAccess.Write, FileShare.Read, 1, FileOptions.None);
    }

    public string Path { get; }

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
            _file.Write(line);
            _file.Flush(flushToDisk: true);
            _seq = seq;
            var record = new AuditRecord(seq, timestamp, auditEvent, pluginId, details, _previous, hash);
            _previous = hash;
            return record;
        }
    }

    public void Dispose() => _file.Dispose();

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

    private static string? ReadLastLine(string path)
    {
        if (!File.Exists(path)) return null;
        string? last = null;
        foreach (var line in File.ReadLines(path))
            if (line.Length > 0) last = line;
        return last;
    }

    private static long CountLines(string path) => File.ReadLines(path).LongCount(line => line.Length > 0);
}
