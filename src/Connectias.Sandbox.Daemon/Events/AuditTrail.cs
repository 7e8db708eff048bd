using System.Text.Json;
using Connectias.Sandbox.Audit;
using Connectias.Sandbox.V1;

namespace Connectias.Sandbox.Daemon.Events;

/// <summary>Writes an audit record and publishes it to WatchEvents; the one way the daemon audits.</summary>
internal sealed class AuditTrail(AuditLog log, EventHub events, ILogger<AuditTrail> logger)
{
    /// <summary>False when the record could not be written (the failure is logged); the caller decides what that costs.</summary>
    public bool Record(string auditEvent, string pluginId, Action<Utf8JsonWriter>? details = null)
    {
        try
        {
            var record = log.Append(auditEvent, pluginId, details);
            events.Publish(pluginId, e => e.Audit = new AuditEvent { Seq = (ulong)record.Seq, Event = record.Event, DetailsJson = record.DetailsJson, Hash = record.Hash });
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ObjectDisposedException)
        {
            logger.LogError(e, "AUDIT LOG FAILED for {Event} of {PluginId}", auditEvent, pluginId);
            return false;
        }
    }

    /// <summary>The cause of a termination in a record's details: reason, message, pid and the error's metadata.</summary>
    /// <summary>The most characters of a message an audit record keeps (a plugin's error message may be 64 KiB).</summary>
    public const int MaxMessageChars = 2048;

    /// <summary>
    /// Writes <c>message</c>, cut to <see cref="MaxMessageChars"/>, and <c>message_length</c> when it was cut: a plugin
    /// that fails every call with a long message cannot fill the audit log at that rate.
    /// </summary>
    public static void WriteMessage(Utf8JsonWriter json, string message)
    {
        if (message.Length <= MaxMessageChars)
        {
            json.WriteString("message", message);
            return;
        }

        json.WriteString("message", message[..MaxMessageChars]);
        json.WriteNumber("message_length", message.Length);
    }

    public static void WriteCause(Utf8JsonWriter json, SandboxException cause, int pid)
    {
        json.WriteString("reason", cause.Reason.WireName());
        WriteMessage(json, cause.Message);
        json.WriteNumber("pid", pid);
        foreach (var (key, value) in cause.Metadata.Where(m => m.Key != "plugin_id")) json.WriteString(key, value);
    }

    /// <summary>The public API's form of a violation event.</summary>
    public static Violation Violation(SandboxException cause)
    {
        var violation = new Violation { Reason = cause.Reason.WireName(), Message = cause.Message };
        foreach (var (key, value) in cause.Metadata) violation.Metadata[key] = value;
        return violation;
    }
}
