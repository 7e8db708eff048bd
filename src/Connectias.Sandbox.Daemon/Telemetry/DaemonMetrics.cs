using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace Connectias.Sandbox.Daemon.Telemetry;

/// <summary>
/// The daemon's counters and histograms on the <see cref="MeterName"/> meter, one method per event, each called in
/// one line from where the event happens. Without an exporter (the default) nothing listens and each call costs a
/// check of an empty listener list. Tags: <c>plugin_id</c> only for plugins the daemon verified and registered, so a
/// caller cannot mint series with made-up ids; <c>reason</c> is a SPEC reason (wire name). The operator's guide has
/// the table of instruments.
/// </summary>
internal sealed class DaemonMetrics
{
    /// <summary>The meter's name, which exporters subscribe to; the ActivitySource has the same name.</summary>
    public const string MeterName = "Connectias.Sandbox";

    // Seconds, from under a millisecond (a no-op plugin) to the longest timeout_ms a policy allows (an hour).
    private static readonly IReadOnlyList<double> DurationBuckets =
        [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600];

    private readonly Counter<long> _calls;
    private readonly Counter<long> _callFailures;
    private readonly Histogram<double> _callDuration;
    private readonly Counter<long> _fuelConsumed;
    private readonly Counter<long> _loads;
    private readonly Counter<long> _loadRefusals;
    private readonly Counter<long> _terminations;
    private readonly Counter<long> _restarts;
    private readonly Counter<long> _networkRequests;
    private readonly Counter<long> _networkSent;
    private readonly Counter<long> _networkReceived;
    private readonly Counter<long> _networkRefusals;
    private readonly Counter<long> _auditLost;

    public DaemonMetrics(IMeterFactory meters)
    {
        var meter = meters.Create(MeterName, CoreVersion.Current);
        _calls = meter.CreateCounter<long>("connectias.sandbox.calls", "{call}", "Execute calls answered for a loaded plugin, failed ones included");
        _callFailures = meter.CreateCounter<long>("connectias.sandbox.call.failures", "{call}", "Execute calls that failed, by SPEC reason");
        _callDuration = meter.CreateHistogram("connectias.sandbox.call.duration", "s",
            "Time from an Execute's admission to its answer: the wait in the plugin's queue plus the worker's time", tags: null,
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = DurationBuckets });
        _fuelConsumed = meter.CreateCounter<long>("connectias.sandbox.fuel.consumed", "{fuel}", "Wasmtime fuel the plugin's calls consumed");
        _loads = meter.CreateCounter<long>("connectias.sandbox.loads", "{load}", "LoadPlugin calls that made a plugin READY");
        _loadRefusals = meter.CreateCounter<long>("connectias.sandbox.load.refusals", "{load}", "LoadPlugin calls refused, by SPEC reason");
        _terminations = meter.CreateCounter<long>("connectias.sandbox.terminations", "{termination}",
            "Workers the daemon ended because of a violation, a fault, a hang or a crash, by SPEC reason");
        _restarts = meter.CreateCounter<long>("connectias.sandbox.restarts", "{restart}",
            "Restarts under restart: on-failure, by outcome: restarted, failed, budget_exhausted");
        _networkRequests = meter.CreateCounter<long>("connectias.sandbox.network.requests", "{request}", "http_request calls the broker accepted under the rate limit");
        _networkSent = meter.CreateCounter<long>("connectias.sandbox.network.sent", "By", "Request body bytes the broker sent");
        _networkReceived = meter.CreateCounter<long>("connectias.sandbox.network.received", "By", "Response body bytes the broker received");
        _networkRefusals = meter.CreateCounter<long>("connectias.sandbox.network.refusals", "{request}", "http_request calls the broker refused, by rule");
        _auditLost = meter.CreateCounter<long>("connectias.sandbox.audit.lost_records", "{record}", "Audit records that could not be written (a full disk), by event");
    }

    /// <summary>An Execute for a registered plugin ended: answered (<paramref name="error"/> null) or failed.</summary>
    public void CallEnded(string pluginId, TimeSpan duration, Exception? error)
    {
        var plugin = new KeyValuePair<string, object?>("plugin_id", pluginId);
        _calls.Add(1, plugin);
        _callDuration.Record(duration.TotalSeconds, plugin);
        if (error is not null) _callFailures.Add(1, plugin, new("reason", ReasonOf(error)));
    }

    public void FuelConsumed(string pluginId, long fuel)
    {
        if (fuel > 0) _fuelConsumed.Add(fuel, new KeyValuePair<string, object?>("plugin_id", pluginId));
    }

    public void Loaded(string pluginId) => _loads.Add(1, new KeyValuePair<string, object?>("plugin_id", pluginId));

    /// <summary>By reason only: a refused package's id is unverified, and a caller could make up any number of them.</summary>
    public void LoadRefused(ErrorReason reason) => _loadRefusals.Add(1, new KeyValuePair<string, object?>("reason", reason.WireName()));

    public void Terminated(string pluginId, ErrorReason reason) =>
        _terminations.Add(1, new KeyValuePair<string, object?>("plugin_id", pluginId), new("reason", reason.WireName()));

    public void Restart(string pluginId, RestartOutcome outcome) =>
        _restarts.Add(1, new KeyValuePair<string, object?>("plugin_id", pluginId), new("outcome", outcome switch
        {
            RestartOutcome.Restarted => "restarted",
            RestartOutcome.Failed => "failed",
            _ => "budget_exhausted",
        }));

    public void NetworkRequest(string pluginId) => _networkRequests.Add(1, new KeyValuePair<string, object?>("plugin_id", pluginId));

    public void NetworkSent(string pluginId, long bytes) => _networkSent.Add(bytes, new KeyValuePair<string, object?>("plugin_id", pluginId));

    public void NetworkReceived(string pluginId, long bytes) => _networkReceived.Add(bytes, new KeyValuePair<string, object?>("plugin_id", pluginId));

    public void NetworkRefused(string pluginId, string rule) =>
        _networkRefusals.Add(1, new KeyValuePair<string, object?>("plugin_id", pluginId), new("rule", rule));

    /// <summary>An audit record could not be written. By event only: its name is one of the daemon's own, never a caller's.</summary>
    public void AuditRecordLost(string auditEvent) => _auditLost.Add(1, new KeyValuePair<string, object?>("event", auditEvent));

    /// <summary>The SPEC reason of a failed call; a caller that went away is CANCELLED, anything else unforeseen INTERNAL.</summary>
    public static string ReasonOf(Exception error) => error switch
    {
        SandboxException sandbox => sandbox.Reason.WireName(),
        OperationCanceledException => "CANCELLED",
        _ => "INTERNAL",
    };
}

/// <summary>What became of a restart the policy asked for.</summary>
internal enum RestartOutcome
{
    Restarted,
    Failed,

    /// <summary>Not attempted: the plugin used its <c>RestartsPerMinute</c>; it stays down.</summary>
    BudgetExhausted,
}
