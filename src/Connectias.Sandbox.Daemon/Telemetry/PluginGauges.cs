using System.Diagnostics.Metrics;
using Connectias.Sandbox.Daemon.Lifecycle;
using Connectias.Sandbox.V1;

namespace Connectias.Sandbox.Daemon.Telemetry;

/// <summary>
/// Observable gauges read from the registry at each collection, one series per READY plugin: its linear memory, its
/// worker's RSS (as <c>ResourceMonitor</c> last sampled it) and the calls waiting in its queue. A plugin that is not
/// READY has no series, so a scrape after a termination or unload shows it gone rather than a stale value. Created
/// only by the MeterProvider (telemetry on); the one class of this room that reads a room above it.
/// </summary>
internal sealed class PluginGauges
{
    /// <summary>The factory returns the meter <see cref="DaemonMetrics"/> uses (same name and version) and disposes it with the host.</summary>
    public PluginGauges(IMeterFactory meters, PluginRegistry registry)
    {
        var meter = meters.Create(DaemonMetrics.MeterName, CoreVersion.Current);
        meter.CreateObservableGauge("connectias.sandbox.plugin.memory", () => Read(registry, plugin => Interlocked.Read(ref plugin.MemoryBytes)),
            "By", "The plugin's linear memory after its last call");
        meter.CreateObservableGauge("connectias.sandbox.worker.rss", () => Read(registry, plugin => Interlocked.Read(ref plugin.WorkerRssBytes)),
            "By", "Resident memory of the plugin's worker process tree, sampled every MonitorIntervalMs");
        meter.CreateObservableGauge("connectias.sandbox.queue.depth", () => Read(registry, plugin => plugin.Current?.Calls.Waiting ?? 0),
            "{call}", "Calls waiting in the plugin's queue behind the one running");
    }

    private static IEnumerable<Measurement<long>> Read(PluginRegistry registry, Func<ManagedPlugin, long> value) =>
        registry.InState(PluginState.Ready).Select(plugin => new Measurement<long>(value(plugin), new KeyValuePair<string, object?>("plugin_id", plugin.Id)));
}
