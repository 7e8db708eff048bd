using System.Globalization;
using Connectias.Sandbox.Audit;
using Connectias.Sandbox.Daemon.Events;
using Connectias.Sandbox.Daemon.Telemetry;

namespace Connectias.Sandbox.Daemon.Network;

/// <summary>
/// Makes a broker refusal visible: a violation event and the refusals metric by rule for each one; an audit record with
/// rule and host, and a log line, for the first of a plugin's refusals by one rule within <c>AuditRepeatWindowMs</c>,
/// and one record with the count for the rest (<see cref="RepeatedAuditRecords"/>). A plugin that hammers its rate
/// limit thousands of times a second would otherwise write (and fsync) a record for every try.
/// </summary>
internal sealed class NetworkRefusalReporter(RepeatedAuditRecords audit, EventHub events, DaemonMetrics metrics, ILogger<NetworkRefusalReporter> logger)
{
    public void Report(string pluginId, NetworkRefusal refusal)
    {
        var reason = refusal.Code == AbiCodes.Denied ? ErrorReason.SecurityViolation : ErrorReason.ResourceExhausted;
        var code = refusal.Code.ToString(CultureInfo.InvariantCulture);
        metrics.NetworkRefused(pluginId, refusal.Rule);
        events.Publish(pluginId, e => e.Violation = AuditTrail.Violation(new SandboxException(reason, refusal.Message,
            ErrorMetadata.For(pluginId, ("rule", refusal.Rule), ("host", refusal.Host), ("code", code)))));
        var recorded = audit.Record(reason == ErrorReason.SecurityViolation ? AuditEvents.SecurityViolation : AuditEvents.ResourceExhaustion, pluginId,
            $"network {refusal.Rule} {code}", json =>
            {
                json.WriteString("kind", "network");
                json.WriteString("rule", refusal.Rule);
                json.WriteString("host", refusal.Host);
                json.WriteNumber("code", refusal.Code);
                AuditTrail.WriteMessage(json, refusal.Message);
            });
        if (recorded) logger.LogWarning("network request of {PluginId} refused ({Rule}, host {Host}): {Message}", pluginId, refusal.Rule, refusal.Host, refusal.Message);
    }
}
