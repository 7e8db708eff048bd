using System.Diagnostics.Metrics;
using System.Net;
using Connectias.Sandbox.Daemon.Hosting;
using Connectias.Sandbox.Daemon.Lifecycle;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using OpenTelemetry.Exporter;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace Connectias.Sandbox.Daemon.Telemetry;

/// <summary>
/// Wires telemetry into the host from the settings, so the composition root needs one line for the services and
/// one for the scrape endpoint. With neither <c>MetricsListen</c> nor <c>OtlpEndpoint</c> set, no OpenTelemetry SDK
/// is registered and no listener opened: the instruments exist, unobserved.
/// </summary>
internal static class TelemetryRegistration
{
    public const string ServiceName = "connectias-sandboxd";
    public const string ScrapePath = "/metrics";

    /// <summary>
    /// Spans recorded besides ours: ASP.NET Core's request span carries the caller's traceparent and is the parent
    /// of LoadPlugin and Execute, so it must be exported too or their parent would be missing from the trace.
    /// </summary>
    public static readonly IReadOnlyList<string> TracedSources = [DaemonTracing.SourceName, "Microsoft.AspNetCore"];

    public static WebApplicationBuilder AddDaemonTelemetry(this WebApplicationBuilder builder, DaemonOptions options)
    {
        builder.Services.AddSingleton<DaemonMetrics>(); // the hooks call it whether or not anything listens
        if (!options.TelemetryEnabled) return builder;

        var telemetry = builder.Services.AddOpenTelemetry()
            .ConfigureResource(resource => resource.AddService(ServiceName, serviceVersion: CoreVersion.Current))
            .WithMetrics(metrics =>
            {
                metrics.AddMeter(DaemonMetrics.MeterName)
                    .AddInstrumentation(services => new PluginGauges(services.GetRequiredService<IMeterFactory>(), services.GetRequiredService<PluginRegistry>()));
                if (options.MetricsListen is { Length: > 0 }) metrics.AddPrometheusExporter();
                if (options.OtlpEndpoint is { Length: > 0 }) metrics.AddOtlpExporter(exporter => PointAt(exporter, options, "v1/metrics"));
            });
        if (options.OtlpEndpoint is { Length: > 0 })
            telemetry.WithTracing(tracing => tracing.AddSource([.. TracedSources]).AddOtlpExporter(exporter => PointAt(exporter, options, "v1/traces")));

        // Prometheus scrapes with HTTP/1.1, and the gRPC listeners speak HTTP/2 only: the scrape gets its own listener.
        if (options.MetricsListen is { Length: > 0 } listen)
            builder.WebHost.ConfigureKestrel(kestrel => kestrel.Listen(IPEndPoint.Parse(listen), endpoint => endpoint.Protocols = HttpProtocols.Http1));
        return builder;
    }

    /// <summary>
    /// Serves <see cref="ScrapePath"/> on the MetricsListen port and nothing else there, and says in the log where
    /// telemetry goes; nothing when telemetry is off.
    /// </summary>
    public static WebApplication UseDaemonTelemetry(this WebApplication app, DaemonOptions options)
    {
        if (!options.TelemetryEnabled) return app;
        var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Connectias.Sandbox.Daemon.Telemetry");
        logger.LogInformation("telemetry: metrics scrape endpoint {Scrape}; OTLP export of traces and metrics {Otlp}",
            options.MetricsListen is { Length: > 0 } ? $"http://{options.MetricsListen}{ScrapePath}" : "off",
            options.OtlpEndpoint is { Length: > 0 } ? $"to {options.OtlpEndpoint} ({options.OtlpProtocol})" : "off");
        if (options.MetricsListen is not { Length: > 0 } listen) return app;
        var port = IPEndPoint.Parse(listen).Port; // validated at start; the gRPC listeners never use this port
        app.UseOpenTelemetryPrometheusScrapingEndpoint(context => context.Connection.LocalPort == port && context.Request.Path == ScrapePath);
        app.Use((context, next) =>
        {
            if (context.Connection.LocalPort != port) return next(context);
            context.Response.StatusCode = StatusCodes.Status404NotFound; // the API is not served on the scrape port
            return Task.CompletedTask;
        });
        return app;
    }

    /// <summary>
    /// The exporter's endpoint and protocol from the settings. Over http/protobuf the signal's path is appended, as
    /// OTEL_EXPORTER_OTLP_ENDPOINT would have it; the SDK appends nothing to an endpoint set in code.
    /// </summary>
    internal static void PointAt(OtlpExporterOptions exporter, DaemonOptions options, string signalPath)
    {
        var endpoint = options.OtlpEndpoint!.TrimEnd('/');
        var http = options.OtlpProtocol == "http/protobuf";
        exporter.Protocol = http ? OtlpExportProtocol.HttpProtobuf : OtlpExportProtocol.Grpc;
        exporter.Endpoint = new Uri(http ? $"{endpoint}/{signalPath}" : endpoint);
    }
}
