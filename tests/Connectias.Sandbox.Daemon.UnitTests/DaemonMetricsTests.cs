using Connectias.Sandbox.Audit;
using Connectias.Sandbox.Daemon.Calls;
using Connectias.Sandbox.Daemon.Events;
using Connectias.Sandbox.Daemon.Hosting;
using Connectias.Sandbox.Daemon.Lifecycle;
using Connectias.Sandbox.Daemon.Policy;
using Connectias.Sandbox.Daemon.Telemetry;
using Connectias.Sandbox.V1;
using Microsoft.Extensions.Logging.Abstractions;
using OpenTelemetry.Metrics;

namespace Connectias.Sandbox.Daemon.UnitTests;

/// <summary>The daemon's instruments as an exporter reads them: names, units, kinds, tags and values.</summary>
[Collection("telemetry")]
public sealed class DaemonMetricsTests : IDisposable
{
    private readonly TelemetryCapture _capture = new();
    private readonly string _plugin = $"com.test.m{Guid.NewGuid():N}"[..24];

    [Fact]
    public void Calls_are_counted_per_plugin_failures_by_reason_and_their_duration_in_seconds()
    {
        _capture.Metrics.CallEnded(_plugin, TimeSpan.FromMilliseconds(3), error: null);
        _capture.Metrics.CallEnded(_plugin, TimeSpan.FromMilliseconds(250), new SandboxException(ErrorReason.PluginError, "no"));
        _capture.Metrics.CallEnded(_plugin, TimeSpan.FromMilliseconds(1), new SandboxException(ErrorReason.QueueFull, "full"));
        _capture.Metrics.CallEnded(_plugin, TimeSpan.FromMilliseconds(1), new OperationCanceledException());

        Assert.Equal(4, Assert.Single(_capture.Points("connectias.sandbox.calls", _plugin)).GetSumLong());
        var failures = _capture.Points("connectias.sandbox.call.failures", _plugin)
            .ToDictionary(point => (string)TelemetryCapture.Tags(point)["reason"]!, point => point.GetSumLong());
        Assert.Equal(new Dictionary<string, long> { ["PLUGIN_ERROR"] = 1, ["QUEUE_FULL"] = 1, ["CANCELLED"] = 1 }, failures);

        var duration = _capture.Collect("connectias.sandbox.call.duration")!;
        Assert.Equal("s", duration.Unit);
        Assert.Equal(MetricType.Histogram, duration.MetricType);
        var histogram = Assert.Single(duration.MetricPoints, point => TelemetryCapture.Tags(point)["plugin_id"] as string == _plugin);
        Assert.Equal(4, histogram.GetHistogramCount());
        Assert.Equal(0.255, histogram.GetHistogramSum(), precision: 6);
        // The advised boundaries, in seconds (the SDK's default ones are meant for milliseconds).
        var bounds = new List<double>();
        foreach (var bucket in histogram.GetHistogramBuckets()) bounds.Add(bucket.ExplicitBound);
        Assert.Equal(0.0005, bounds[0]);
        Assert.Contains(0.25, bounds);
    }

    [Fact]
    public void Loads_are_counted_per_plugin_and_refusals_by_reason_only()
    {
        _capture.Metrics.Loaded(_plugin);
        _capture.Metrics.LoadRefused(ErrorReason.InvalidSignature);
        _capture.Metrics.LoadRefused(ErrorReason.InvalidSignature);

        Assert.Equal(1, Assert.Single(_capture.Points("connectias.sandbox.loads", _plugin)).GetSumLong());
        var refusal = Assert.Single(_capture.Collect("connectias.sandbox.load.refusals")!.MetricPoints);
        Assert.Equal(new Dictionary<string, object?> { ["reason"] = "INVALID_SIGNATURE" }, TelemetryCapture.Tags(refusal));
        Assert.Equal(2, refusal.GetSumLong());
    }

    [Fact]
    public void Terminations_restarts_fuel_and_network_traffic_carry_their_tags()
    {
        _capture.Metrics.Terminated(_plugin, ErrorReason.FuelExhausted);
        _capture.Metrics.Restart(_plugin, RestartOutcome.Restarted);
        _capture.Metrics.Restart(_plugin, RestartOutcome.BudgetExhausted);
        _capture.Metrics.FuelConsumed(_plugin, 1200);
        _capture.Metrics.FuelConsumed(_plugin, 34);
        _capture.Metrics.NetworkRequest(_plugin);
        _capture.Metrics.NetworkSent(_plugin, 12);
        _capture.Metrics.NetworkReceived(_plugin, 700);
        _capture.Metrics.NetworkRefused(_plugin, "allow-list");

        Assert.Equal("FUEL_EXHAUSTED", TelemetryCapture.Tags(Assert.Single(_capture.Points("connectias.sandbox.terminations", _plugin)))["reason"]);
        Assert.Equal(["budget_exhausted", "restarted"],
            _capture.Points("connectias.sandbox.restarts", _plugin).Select(point => (string)TelemetryCapture.Tags(point)["outcome"]!).Order());
        Assert.Equal(1234, Assert.Single(_capture.Points("connectias.sandbox.fuel.consumed", _plugin)).GetSumLong());
        Assert.Equal(1, Assert.Single(_capture.Points("connectias.sandbox.network.requests", _plugin)).GetSumLong());
        Assert.Equal(12, Assert.Single(_capture.Points("connectias.sandbox.network.sent", _plugin)).GetSumLong());
        Assert.Equal("By", _capture.Collect("connectias.sandbox.network.received")!.Unit);
        Assert.Equal(700, Assert.Single(_capture.Points("connectias.sandbox.network.received", _plugin)).GetSumLong());
        Assert.Equal("allow-list", TelemetryCapture.Tags(Assert.Single(_capture.Points("connectias.sandbox.network.refusals", _plugin)))["rule"]);
    }

    [Fact]
    public void Gauges_show_each_ready_plugins_memory_rss_and_queue_and_nothing_for_others()
    {
        using var state = new TempAuditDirectory();
        var events = new EventHub();
        var registry = new PluginRegistry(new DaemonOptions(), new PluginLifecycle(events, new AuditTrail(state.Log, events, AdminPolicy.BuiltIn, _capture.Metrics, NullLogger<AuditTrail>.Instance)));
        var ready = Plugin(_plugin, PluginState.Ready);
        ready.RecordMemory(65536);
        ready.WorkerRssBytes = 40_000_000;
        var terminated = Plugin(_plugin + "x", PluginState.Terminated);
        terminated.RecordMemory(1);
        registry.Register(ready);
        registry.Register(terminated);
        _ = new PluginGauges(_capture.Meters, registry);

        Assert.Equal(65536, Assert.Single(_capture.Points("connectias.sandbox.plugin.memory", _plugin)).GetGaugeLastValueLong());
        Assert.Equal(40_000_000, Assert.Single(_capture.Points("connectias.sandbox.worker.rss", _plugin)).GetGaugeLastValueLong());
        Assert.Equal(0, Assert.Single(_capture.Points("connectias.sandbox.queue.depth", _plugin)).GetGaugeLastValueLong()); // no worker yet
        Assert.Empty(_capture.Points("connectias.sandbox.plugin.memory", _plugin + "x"));
    }

    [Fact]
    public void A_queue_counts_the_calls_waiting_in_it()
    {
        var queue = new CallQueue(4);
        for (var i = 0; i < 3; i++) Assert.True(queue.TryEnqueue(new CallJob("c", [], null, CancellationToken.None), out _));
        Assert.Equal(3, queue.Waiting);
        queue.FailPending(new SandboxException(ErrorReason.PluginCrashed, "gone"));
        Assert.Equal(0, queue.Waiting);
    }

    private static ManagedPlugin Plugin(string id, PluginState state) => LifecycleHarness.Plugin(id, state);

    public void Dispose() => _capture.Dispose();

    private sealed class TempAuditDirectory : IDisposable
    {
        private readonly string _directory = Directory.CreateTempSubdirectory("connectias-gauges-").FullName;

        public TempAuditDirectory() => Log = new AuditLog(_directory);

        public AuditLog Log { get; }

        public void Dispose()
        {
            Log.Dispose();
            Directory.Delete(_directory, recursive: true);
        }
    }
}

public class CallQueueBytesTests
{
    [Fact]
    public void Arguments_count_against_the_plugins_bytes_and_the_daemons_and_come_back_when_a_call_ends()
    {
        var total = new QueuedBytes(1500);
        var one = new CallQueue(100, bytesLimit: 1000, total);
        var other = new CallQueue(100, bytesLimit: 1000, total);
        var first = new CallJob("c", new byte[600], null, CancellationToken.None);
        Assert.True(one.TryEnqueue(first, out _));
        Assert.False(one.TryEnqueue(new CallJob("c", new byte[600], null, CancellationToken.None), out var perPlugin));
        Assert.Contains("QueueBytesPerPlugin", perPlugin);
        Assert.True(other.TryEnqueue(new CallJob("c", new byte[600], null, CancellationToken.None), out _));
        Assert.False(other.TryEnqueue(new CallJob("c", new byte[400], null, CancellationToken.None), out var daemonWide));
        Assert.Contains("QueueBytesTotal", daemonWide);

        first.Result.SetException(new SandboxException(ErrorReason.PluginError, "done"));
        // The result's continuations run asynchronously: the bytes come back a moment after.
        Assert.True(SpinWait.SpinUntil(() => other.TryEnqueue(new CallJob("c", new byte[400], null, CancellationToken.None), out _), TimeSpan.FromSeconds(10)));
        Assert.True(one.TryEnqueue(new CallJob("c", new byte[500], null, CancellationToken.None), out _));
    }
}
