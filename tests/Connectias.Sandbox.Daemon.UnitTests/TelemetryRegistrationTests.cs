using Connectias.Sandbox.Daemon.Hosting;
using Connectias.Sandbox.Daemon.Telemetry;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry.Exporter;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;

namespace Connectias.Sandbox.Daemon.UnitTests;

/// <summary>What the settings register: nothing of OpenTelemetry unless an exporter is configured, and then only what it needs.</summary>
public class TelemetryRegistrationTests
{
    [Fact]
    public void With_telemetry_off_no_part_of_the_OpenTelemetry_SDK_is_registered()
    {
        var services = Registered(new DaemonOptions());
        Assert.Equal(WebApplication.CreateSlimBuilder().Services.Count + 1, services.Count); // DaemonMetrics, and nothing else
        Assert.Contains(services, d => d.ServiceType == typeof(DaemonMetrics));
        Assert.DoesNotContain(services, IsOpenTelemetry);
        Assert.Contains(Registered(new DaemonOptions { MetricsListen = "127.0.0.1:9464" }), IsOpenTelemetry);
    }

    [Fact]
    public void A_scrape_listener_registers_metrics_and_no_tracing()
    {
        var services = Registered(new DaemonOptions { MetricsListen = "127.0.0.1:9464" });
        Assert.Contains(services, d => d.ServiceType == typeof(MeterProvider));
        Assert.DoesNotContain(services, d => d.ServiceType == typeof(TracerProvider));
    }

    [Fact]
    public void An_otlp_endpoint_registers_metrics_and_tracing()
    {
        var services = Registered(new DaemonOptions { OtlpEndpoint = "http://127.0.0.1:4317" });
        Assert.Contains(services, d => d.ServiceType == typeof(MeterProvider));
        Assert.Contains(services, d => d.ServiceType == typeof(TracerProvider));
    }

    [Theory]
    [InlineData("grpc", "http://collector:4317", OtlpExportProtocol.Grpc, "http://collector:4317/")]
    [InlineData("http/protobuf", "http://collector:4318", OtlpExportProtocol.HttpProtobuf, "http://collector:4318/v1/traces")]
    [InlineData("http/protobuf", "https://collector/otlp/", OtlpExportProtocol.HttpProtobuf, "https://collector/otlp/v1/traces")]
    public void The_exporter_gets_the_protocol_and_over_http_the_signals_path(string protocol, string endpoint, OtlpExportProtocol expected, string url)
    {
        var exporter = new OtlpExporterOptions();
        TelemetryRegistration.PointAt(exporter, new DaemonOptions { OtlpEndpoint = endpoint, OtlpProtocol = protocol }, "v1/traces");
        Assert.Equal(expected, exporter.Protocol);
        Assert.Equal(new Uri(url), exporter.Endpoint);
    }

    private static List<ServiceDescriptor> Registered(DaemonOptions options)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.AddDaemonTelemetry(options);
        return builder.Services.ToList();
    }

    private static bool IsOpenTelemetry(ServiceDescriptor descriptor) =>
        IsOpenTelemetryType(descriptor.ServiceType) ||
        IsOpenTelemetryType(descriptor.IsKeyedService ? descriptor.KeyedImplementationType : descriptor.ImplementationType) ||
        IsOpenTelemetryType((descriptor.IsKeyedService ? descriptor.KeyedImplementationInstance : descriptor.ImplementationInstance)?.GetType());

    private static bool IsOpenTelemetryType(Type? type) =>
        type is not null && (type.Assembly.GetName().Name!.StartsWith("OpenTelemetry", StringComparison.Ordinal) || type.GenericTypeArguments.Any(IsOpenTelemetryType));
}
