using System.Net;
using System.Net.Sockets;
using Grpc.Health.V1;
using Grpc.Net.Client;

namespace Connectias.Sandbox.Daemon.Tests;

/// <summary>connectias-sandboxd's command line: help, refusals of bad settings, and the optional TCP listener.</summary>
public class CommandLineTests
{
    [Fact]
    public void Help_lists_every_flag_of_the_spec()
    {
        var (code, output, _) = DaemonProcess.RunToExit("--help");
        Assert.Equal(0, code);
        foreach (var flag in new[] { "--socket", "--state-dir", "--trust-dir", "--policy", "--allow-unsigned", "--tcp" }) Assert.Contains(flag, output);
    }

    [Fact]
    public void An_unknown_option_is_refused_with_exit_2() =>
        Assert.Equal(2, DaemonProcess.RunToExit("--frobnicate").ExitCode);

    [Fact]
    public void A_tcp_setting_that_is_not_ip_and_port_is_refused()
    {
        var (code, _, error) = DaemonProcess.RunToExit("--tcp", "localhost", "--state-dir", Path.Combine(Path.GetTempPath(), "never-created"));
        Assert.Equal(2, code);
        Assert.Contains("not IP:PORT", error);
    }

    [Fact]
    public void A_malformed_policy_stops_the_daemon_naming_the_field()
    {
        var state = Directory.CreateTempSubdirectory("connectias-badpolicy-").FullName;
        var policy = Path.Combine(state, "policy.json");
        File.WriteAllText(policy, """{ "default": { "permissions": ["root"] } }""");
        var (code, _, error) = DaemonProcess.RunToExit("--state-dir", state, "--policy", policy);
        Assert.Equal(1, code);
        Assert.Contains("default.permissions", error);
        Assert.Contains("root", error);
        Directory.Delete(state, recursive: true);
    }

    [Fact]
    public async Task The_optional_tcp_listener_serves_the_same_api()
    {
        int port;
        using (var probe = new TcpListener(IPAddress.Loopback, 0))
        {
            probe.Start();
            port = ((IPEndPoint)probe.LocalEndpoint).Port;
        }

        using var daemon = DaemonProcess.Start("{}", ("Tcp", $"127.0.0.1:{port}"));
        using var channel = GrpcChannel.ForAddress($"http://127.0.0.1:{port}");
        var health = await new Health.HealthClient(channel).CheckAsync(new HealthCheckRequest());
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, health.Status);

        // The CLI reaches it too.
        var output = new StringWriter();
        var error = new StringWriter();
        Assert.True(Cli.CliApp.Run(["ps", "--address", $"http://127.0.0.1:{port}"], output, error) == 0, error.ToString());
        Assert.StartsWith("ID ", output.ToString());
    }
}

/// <summary>Sandbox:WorkerExecutable: a worker started as its own executable rather than through the dotnet host.</summary>
public class WorkerExecutableTests
{
    [Fact]
    public async Task A_configured_worker_executable_serves_plugins()
    {
        // The apphost beside the worker's DLL stands in for a NativeAOT publish: both are started directly.
        var executable = Path.Combine(AppContext.BaseDirectory, "connectias-sandbox-worker");
        using var daemon = DaemonProcess.Start("{}", ("WorkerExecutable", executable));
        Assert.Contains($"worker: {executable}", daemon.Log);
        using var client = daemon.Client();
        var info = await client.LoadAsync(daemon.Package("hello", "com.test.native", ",\"permissions\":[\"storage\",\"system_info\"]"));
        Assert.Contains(LifecycleTests.Descendants(info.Pid), pid => File.ReadAllText($"/proc/{pid}/cmdline").StartsWith(executable + "\0", StringComparison.Ordinal));
        Assert.Equal("Hello, native!", (await client.ExecuteAsync("com.test.native", "greet", "native"u8.ToArray())).Output.ToStringUtf8());
        await ApiErrorTests.Refused(() => client.ExecuteAsync("com.test.native", "fail"), Grpc.Core.StatusCode.Unknown, "PLUGIN_ERROR");
        Assert.Empty((await client.UnloadAsync("com.test.native")).Issues);
    }

    [Fact]
    public void A_missing_worker_executable_stops_the_daemon()
    {
        var (code, _, error) = DaemonProcess.RunToExit(["--state-dir", Path.Combine(Path.GetTempPath(), "never-created-either")], [("WorkerExecutable", "/nonexistent/worker")]);
        Assert.Equal(1, code);
        Assert.Contains("WorkerExecutable '/nonexistent/worker' does not exist", error);
    }
}
