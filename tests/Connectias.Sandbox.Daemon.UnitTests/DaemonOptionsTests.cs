using System.Diagnostics.Metrics;
using Connectias.Sandbox.Daemon.Hosting;
using Connectias.Sandbox.Daemon.Supervision;
using Connectias.Sandbox.Daemon.Telemetry;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;

namespace Connectias.Sandbox.Daemon.UnitTests;

/// <summary>Settings checked at start, the command line's flags, and the restart back-off they drive.</summary>
public class DaemonOptionsTests
{
    [Fact]
    public void The_embedded_defaults_are_valid() => Assert.True(new DaemonOptionsValidator().Validate(null, new DaemonOptions()).Succeeded);

    [Fact]
    public void The_native_worker_is_the_default_and_jit_is_the_other_runtime()
    {
        Assert.Equal("native", new DaemonOptions().WorkerRuntime);
        Assert.True(new DaemonOptionsValidator().Validate(null, new DaemonOptions { WorkerRuntime = "jit" }).Succeeded);
    }

    [Fact]
    public void Telemetry_is_off_by_default_and_either_exporter_turns_it_on()
    {
        Assert.False(new DaemonOptions().TelemetryEnabled);
        Assert.True(new DaemonOptions { MetricsListen = "127.0.0.1:9464" }.TelemetryEnabled);
        Assert.True(new DaemonOptions { OtlpEndpoint = "http://127.0.0.1:4317", OtlpProtocol = "http/protobuf" }.TelemetryEnabled);
        Assert.True(new DaemonOptionsValidator().Validate(null, new DaemonOptions { MetricsListen = "[::1]:9464", OtlpEndpoint = "https://otel.example.com" }).Succeeded);
    }

    [Fact]
    public void The_audit_repeat_window_is_a_minute_may_be_0_and_is_refused_below_it()
    {
        Assert.Equal(60_000, new DaemonOptions().AuditRepeatWindowMs);
        Assert.True(new DaemonOptionsValidator().Validate(null, new DaemonOptions { AuditRepeatWindowMs = 0 }).Succeeded);
        var refused = new DaemonOptionsValidator().Validate(null, new DaemonOptions { AuditRepeatWindowMs = -1 });
        Assert.Equal(["Sandbox:AuditRepeatWindowMs is -1; it must be at least 0"], refused.Failures);
    }

    [Theory]
    [InlineData(nameof(DaemonOptions.Sandbox), "Sandbox:Sandbox 'chroot' is not a sandbox mode")]
    [InlineData(nameof(DaemonOptions.WorkerRuntime), "Sandbox:WorkerRuntime 'aot' is not a worker runtime; use native, jit")]
    [InlineData(nameof(DaemonOptions.Tcp), "Sandbox:Tcp 'localhost' is not IP:PORT")]
    [InlineData(nameof(DaemonOptions.QueueLimit), "Sandbox:QueueLimit is 0; it must be at least 1")]
    [InlineData(nameof(DaemonOptions.MaxPlugins), "Sandbox:MaxPlugins is -3; it must be at least 1")]
    [InlineData(nameof(DaemonOptions.WorkerStartTimeoutMs), "Sandbox:WorkerStartTimeoutMs is -1; it must be at least 1")]
    [InlineData(nameof(DaemonOptions.UnloadTimeoutMs), "Sandbox:UnloadTimeoutMs is 0; it must be at least 1")]
    [InlineData(nameof(DaemonOptions.CallGraceMs), "Sandbox:CallGraceMs is -5; it must be at least 0")]
    [InlineData(nameof(DaemonOptions.MonitorIntervalMs), "Sandbox:MonitorIntervalMs is 1; it must be at least 10")]
    [InlineData(nameof(DaemonOptions.RestartBackoffMs), "Sandbox:RestartBackoffMs is 0; it must be at least 1")]
    [InlineData(nameof(DaemonOptions.RestartsPerMinute), "Sandbox:RestartsPerMinute is -1; it must be at least 0")]
    [InlineData(nameof(DaemonOptions.UnloadedRetentionSeconds), "Sandbox:UnloadedRetentionSeconds is -1; it must be at least 0")]
    [InlineData(nameof(DaemonOptions.WorkerRssAllowanceBytes), "Sandbox:WorkerRssAllowanceBytes is -1; it must be at least 0")]
    [InlineData(nameof(DaemonOptions.WarmWorkers), "Sandbox:WarmWorkers is -1; it must be at least 0")]
    [InlineData(nameof(DaemonOptions.ModuleCacheMaxBytes), "Sandbox:ModuleCacheMaxBytes is -1; it must be at least 0")]
    [InlineData(nameof(DaemonOptions.WorkerPipelineDepth), "Sandbox:WorkerPipelineDepth is 0; it must be at least 1")]
    [InlineData(nameof(DaemonOptions.QueueBytesPerPlugin), "Sandbox:QueueBytesPerPlugin is 0; it must be at least 1")]
    [InlineData(nameof(DaemonOptions.QueueBytesTotal), "Sandbox:QueueBytesTotal is 0; it must be at least 1")]
    [InlineData(nameof(DaemonOptions.WorkerUser), "Sandbox:WorkerUser 'nobody' is not UID:GID with numbers above 0")]
    [InlineData("WorkerUserRoot", "Sandbox:WorkerUser '0:0' is not UID:GID with numbers above 0")]
    [InlineData(nameof(DaemonOptions.MetricsListen), "Sandbox:MetricsListen '9464' is not IP:PORT")]
    [InlineData("MetricsListenOnTcpPort", "Sandbox:MetricsListen '127.0.0.1:7700' uses the port of Tcp '0.0.0.0:7700'")]
    [InlineData(nameof(DaemonOptions.OtlpEndpoint), "Sandbox:OtlpEndpoint 'collector:4317' is not an http:// or https:// URL")]
    [InlineData(nameof(DaemonOptions.OtlpProtocol), "Sandbox:OtlpProtocol 'http/json' is not an OTLP protocol; use grpc, http/protobuf")]
    [InlineData(nameof(DaemonOptions.PluginLogLinesPerCall), "Sandbox:PluginLogLinesPerCall is 0; it must be at least 1")]
    [InlineData(nameof(DaemonOptions.PluginLogBytesPerCall), "Sandbox:PluginLogBytesPerCall is 100; it must be at least 8192")]
    [InlineData(nameof(DaemonOptions.PluginLogLinesPerMinute), "Sandbox:PluginLogLinesPerMinute is 100; it must be at least 200, PluginLogLinesPerCall")]
    [InlineData(nameof(DaemonOptions.PluginLogBytesPerMinute), "Sandbox:PluginLogBytesPerMinute is 1000; it must be at least 65536, PluginLogBytesPerCall")]
    [InlineData(nameof(DaemonOptions.StorageMaxEntries), "Sandbox:StorageMaxEntries is 0; it must be at least 1")]
    [InlineData(nameof(DaemonOptions.WorkerLogLinesPerMinute), "Sandbox:WorkerLogLinesPerMinute is 5999; it must be at least 6000, three times PluginLogLinesPerMinute")]
    [InlineData(nameof(DaemonOptions.WorkerLogCharsPerMinute), "Sandbox:WorkerLogCharsPerMinute is 1000000; it must be at least 3145728, three times PluginLogBytesPerMinute")]
    public void A_bad_value_is_refused_naming_the_setting(string setting, string expected)
    {
        var options = new DaemonOptions();
        switch (setting)
        {
            case nameof(DaemonOptions.Sandbox): options.Sandbox = "chroot"; break;
            case nameof(DaemonOptions.WorkerRuntime): options.WorkerRuntime = "aot"; break;
            case nameof(DaemonOptions.Tcp): options.Tcp = "localhost"; break;
            case nameof(DaemonOptions.QueueLimit): options.QueueLimit = 0; break;
            case nameof(DaemonOptions.MaxPlugins): options.MaxPlugins = -3; break;
            case nameof(DaemonOptions.WorkerStartTimeoutMs): options.WorkerStartTimeoutMs = -1; break;
            case nameof(DaemonOptions.UnloadTimeoutMs): options.UnloadTimeoutMs = 0; break;
            case nameof(DaemonOptions.CallGraceMs): options.CallGraceMs = -5; break;
            case nameof(DaemonOptions.MonitorIntervalMs): options.MonitorIntervalMs = 1; break;
            case nameof(DaemonOptions.RestartBackoffMs): options.RestartBackoffMs = 0; break;
            case nameof(DaemonOptions.RestartsPerMinute): options.RestartsPerMinute = -1; break;
            case nameof(DaemonOptions.UnloadedRetentionSeconds): options.UnloadedRetentionSeconds = -1; break;
            case nameof(DaemonOptions.WorkerRssAllowanceBytes): options.WorkerRssAllowanceBytes = -1; break;
            case nameof(DaemonOptions.WarmWorkers): options.WarmWorkers = -1; break;
            case nameof(DaemonOptions.ModuleCacheMaxBytes): options.ModuleCacheMaxBytes = -1; break;
            case nameof(DaemonOptions.WorkerPipelineDepth): options.WorkerPipelineDepth = 0; break;
            case nameof(DaemonOptions.QueueBytesPerPlugin): options.QueueBytesPerPlugin = 0; break;
            case nameof(DaemonOptions.QueueBytesTotal): options.QueueBytesTotal = 0; break;
            case nameof(DaemonOptions.WorkerUser): options.WorkerUser = "nobody"; break;
            case "WorkerUserRoot": options.WorkerUser = "0:0"; break;
            case nameof(DaemonOptions.MetricsListen): options.MetricsListen = "9464"; break;
            case "MetricsListenOnTcpPort": (options.MetricsListen, options.Tcp, options.TcpInsecure) = ("127.0.0.1:7700", "0.0.0.0:7700", true); break;
            case nameof(DaemonOptions.OtlpEndpoint): options.OtlpEndpoint = "collector:4317"; break;
            case nameof(DaemonOptions.OtlpProtocol): options.OtlpProtocol = "http/json"; break;
            case nameof(DaemonOptions.PluginLogLinesPerCall): options.PluginLogLinesPerCall = 0; break;
            case nameof(DaemonOptions.PluginLogBytesPerCall): options.PluginLogBytesPerCall = 100; break;
            case nameof(DaemonOptions.PluginLogLinesPerMinute): options.PluginLogLinesPerMinute = 100; break;
            case nameof(DaemonOptions.PluginLogBytesPerMinute): options.PluginLogBytesPerMinute = 1000; break;
            case nameof(DaemonOptions.StorageMaxEntries): options.StorageMaxEntries = 0; break;
            case nameof(DaemonOptions.WorkerLogLinesPerMinute): options.WorkerLogLinesPerMinute = 5999; break;
            case nameof(DaemonOptions.WorkerLogCharsPerMinute): options.WorkerLogCharsPerMinute = 1_000_000; break;
        }

        var result = new DaemonOptionsValidator().Validate(null, options);
        Assert.True(result.Failed);
        Assert.Contains(expected, Assert.Single(result.Failures!));
    }

    [Theory]
    [InlineData("127.0.0.1:7700", false, null, null, null, "Sandbox:Tcp '127.0.0.1:7700' is served only with TLS and client certificates, and TlsCertificate (--tls-cert FILE), TlsKey (--tls-key FILE), TlsClientCaDir (--tls-client-ca DIR) are not set; or allow plaintext TCP explicitly with --tcp-insecure")]
    [InlineData("127.0.0.1:7700", false, "s.pem", "s.key", null, "TlsClientCaDir (--tls-client-ca DIR) is not set; or allow plaintext TCP explicitly with --tcp-insecure")]
    [InlineData("127.0.0.1:7700", true, "s.pem", null, null, "Sandbox:TcpInsecure is set together with TLS settings")]
    [InlineData(null, true, null, null, null, "Sandbox:TcpInsecure is set but Tcp is not")]
    [InlineData(null, false, "s.pem", "s.key", null, "Sandbox:TlsCertificate, TlsKey are set but Tcp is not")]
    [InlineData("127.0.0.1:7700", false, "s.pem", " ", "cas", "Sandbox:TlsKey is empty")]
    public void The_tcp_listener_needs_all_tls_settings_or_an_explicit_tcp_insecure(string? tcp, bool insecure, string? certificate, string? key, string? caDir, string expected)
    {
        var options = new DaemonOptions { Tcp = tcp, TcpInsecure = insecure, TlsCertificate = certificate, TlsKey = key, TlsClientCaDir = caDir };
        var result = new DaemonOptionsValidator().Validate(null, options);
        Assert.True(result.Failed);
        Assert.Contains(expected, Assert.Single(result.Failures!));
    }

    [Fact]
    public void A_tcp_listener_with_all_tls_settings_or_tcp_insecure_is_valid()
    {
        var validator = new DaemonOptionsValidator();
        Assert.True(validator.Validate(null, new DaemonOptions { Tcp = "127.0.0.1:7700", TlsCertificate = "s.pem", TlsKey = "s.key", TlsClientCaDir = "cas" }).Succeeded);
        Assert.True(validator.Validate(null, new DaemonOptions { Tcp = "[::1]:7700", TcpInsecure = true }).Succeeded);
        Assert.Equal(["--tcp-insecure=true"], CommandLine.Normalize(["--tcp-insecure"]));
        Assert.Null(CommandLine.UnknownOption(["--tcp", "127.0.0.1:1", "--tls-cert", "a", "--tls-key", "b", "--tls-client-ca", "c", "--tcp-insecure=true"]));
    }

    [Fact]
    public void Every_flag_maps_to_a_sandbox_setting_and_others_are_unknown()
    {
        Assert.All(CommandLine.Switches.Values, setting => Assert.StartsWith("Sandbox:", setting));
        Assert.Null(CommandLine.UnknownOption(CommandLine.Normalize(["--socket", "/tmp/s", "--allow-unsigned", "--no-dev-key", "--sandbox=none"])));
        Assert.Equal("--frobnicate", CommandLine.UnknownOption(CommandLine.Normalize(["--socket", "/tmp/s", "--frobnicate=1"])));
        Assert.Equal(["--allow-unsigned=true", "--no-dev-key=false"], CommandLine.Normalize(["--allow-unsigned", "--no-dev-key"]));
    }

    [Fact]
    public void Unknown_settings_are_named_with_the_file_or_environment_they_came_from()
    {
        var file = Path.GetTempFileName();
        File.WriteAllText(file, """{ "Sandbox": { "QueueLimit": 3, "MaxPlugin": 9 } }""");
        try
        {
            var configuration = new Microsoft.Extensions.Configuration.ConfigurationBuilder()
                .AddJsonFile(file)
                .AddInMemoryCollection([KeyValuePair.Create<string, string?>("Sandbox:statedir", "/x")]) // case-insensitively known
                .Build();
            var problem = Assert.Single(StartupChecks.UnknownSettings(configuration));
            Assert.StartsWith($"unknown setting Sandbox:MaxPlugin (from the settings file {Path.GetFileName(file)})", problem);
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public void Restarts_back_off_from_the_setting_doubling_each_time()
    {
        using var services = new ServiceCollection().AddMetrics().BuildServiceProvider();
        var restarts = new RestartScheduler(new DaemonOptions { RestartBackoffMs = 250 }, new BackgroundTasks(NullLogger<BackgroundTasks>.Instance),
            new DaemonMetrics(services.GetRequiredService<IMeterFactory>()), NullLogger<RestartScheduler>.Instance);
        Assert.Equal([250.0, 500.0, 1000.0, 2000.0, 4000.0], Enumerable.Range(0, 5).Select(n => restarts.Backoff(n).TotalMilliseconds));
    }
}
