using System.Globalization;
using Connectias.Sandbox.Audit;
using Connectias.Sandbox.Daemon.Events;
using Connectias.Sandbox.Daemon.Telemetry;

namespace Connectias.Sandbox.Daemon.Network;

/// <summary>Makes a broker refusal visible: the log, a violation event, an audit record with rule and host, and the refusals metric by rule.</summary>
internal sealed class NetworkRefusalReporter(AuditTrail audit, EventHub events, DaemonMetrics metrics, ILogger<NetworkRefusalReporter> logger)
{
    public void Report(string pluginId, NetworkRefusal refusal)
    {
        var reason = refusal.Code == AbiCodes.Denied ? ErrorReason.SecurityViolation : ErrorReason.ResourceExhausted;
        metrics.NetworkRefused(pluginId, refusal.Rule);
        logger.LogWarning("network request of {PluginId} refused ({Rule}, host {Host}): {Message}", pluginId, refusal.Rule, refusal.Host, refusal.Message);
        events.Publish(pluginId, e => e.Violation = AuditTrail.Violation(new SandboxException(reason, refusal.Message,
            ErrorMetadata.For(pluginId, ("rule", refusal.Rule), ("host", refusal.Host), ("code", refusal.Code.ToString(CultureInfo.InvariantCulture))))));
        audit.Record(reason == ErrorReason.SecurityViolation ? AuditEvents.SecurityViolation : AuditEvents.ResourceExhaustion, pluginId, json =>
        {
            json.WriteString("kind", "network");
            json.WriteString("rule", refusal.Rule);
            json.WriteString("host", refusal.Host);
            json.WriteNumber("code", refusal.Code);
            AuditTrail.WriteMessage(json, refusal.Message);
        });
    }
}
