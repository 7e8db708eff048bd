using System.Diagnostics;
using System.Diagnostics.Metrics;
using Connectias.Sandbox.Daemon.Telemetry;
using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;

namespace Connectias.Sandbox.Daemon.UnitTests;

/// <summary>
/// The daemon's meter and ActivitySource read through the OpenTelemetry SDK's in-memory exporters, as an exporter
/// would see them. Providers subscribe by name, process-wide, so the tests using this run one at a time.
/// </summary>
internal sealed class TelemetryCapture : IDisposable
{
    private readonly ServiceProvider _services;
    private readonly MeterProvider _meterProvider;
    private readonly TracerProvider _tracerProvider;
    private readonly List<MetricSnapshot> _metrics = [];

    public TelemetryCapture()
    {
        _services = new ServiceCollection().AddMetrics().BuildServiceProvider();
        Meters = _services.GetRequiredService<IMeterFactory>();
        _meterProvider = Sdk.CreateMeterProviderBuilder().AddMeter(DaemonMetrics.MeterName).AddInMemoryExporter(_metrics).Build()!;
        _tracerProvider = Sdk.CreateTracerProviderBuilder().AddSource(DaemonTracing.SourceName).AddInMemoryExporter(Spans).Build()!;
        Metrics = new DaemonMetrics(Meters);
    }

    public IMeterFactory Meters { get; }
    public DaemonMetrics Metrics { get; }

    /// <summary>Every span of the daemon's source stopped since this capture began.</summary>
    public List<Activity> Spans { get; } = [];

    /// <summary>Collects now and returns the metric <paramref name="name"/> (cumulative since the capture began), or null if it has no points.</summary>
    public MetricSnapshot? Collect(string name)
    {
        _metrics.Clear();
        _meterProvider.ForceFlush();
        return _metrics.SingleOrDefault(metric => metric.Name == name);
    }

    /// <summary>The points of <paramref name="name"/> tagged with <paramref name="pluginId"/>.</summary>
    public List<MetricPoint> Points(string name, string pluginId) =>
        Collect(name)?.MetricPoints.Where(point => Tags(point).GetValueOrDefault("plugin_id") as string == pluginId).ToList() ?? [];

    public static Dictionary<string, object?> Tags(MetricPoint point)
    {
        var tags = new Dictionary<string, object?>();
        foreach (var tag in point.Tags) tags[tag.Key] = tag.Value;
        return tags;
    }

    public void Dispose()
    {
        _tracerProvider.Dispose();
        _meterProvider.Dispose();
        _services.Dispose();
    }
}

[CollectionDefinition("telemetry", DisableParallelization = true)]
public sealed class TelemetryCollection;
