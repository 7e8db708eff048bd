using Grpc.Health.V1;
using Connectias.Sandbox.V1;
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
        foreach (var flag in new[] { "--socket", "--state-dir", "--trust-dir", "--policy", "--allow-unsigned", "--tcp", "--tls-cert", "--tls-key", "--tls-client-ca", "--tcp-insecure" })
            Assert.Contains(flag, output);
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
    public async Task A_plaintext_tcp_listener_needs_tcp_insecure_and_is_a_warning_at_start()
    {
        var port = TcpTlsTests.FreePort();
        using var daemon = DaemonProcess.Start(new DaemonStartInfo { Arguments = ["--tcp", $"127.0.0.1:{port}", "--tcp-insecure"] });
        Assert.Contains($"\"LogLevel\":\"Warning\"", daemon.Log.Split('\n').Single(line => line.Contains("INSECURE: the TCP listener", StringComparison.Ordinal)));
        Assert.Contains($"and tcp 127.0.0.1:{port} (PLAINTEXT", daemon.Log);
        Assert.Equal("plaintext", Assert.Single(daemon.AuditRecords(), r => r.Event == "DAEMON_START").Details.GetProperty("tcp_security").GetString());
        using var channel = GrpcChannel.ForAddress($"http://127.0.0.1:{port}");
        var health = await new Health.HealthClient(channel).CheckAsync(new HealthCheckRequest());
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, health.Status);

        // The CLI reaches it too.
        var output = new StringWriter();
        var error = new StringWriter();
        Assert.True(Cli.CliApp.Run(["ps", "--address", $"http://127.0.0.1:{port}"], output, error) == 0, error.ToString());
        Assert.StartsWith("ID ", output.ToString());

        // A path names a file on the daemon's machine: only callers on its Unix socket may load one.
        var file = Path.Combine(daemon.StateDir, "by-path.zip");
        File.WriteAllBytes(file, daemon.Package("noop", "com.test.by-path"));
        using var remote = Client.SandboxClient.ConnectAddress(new Uri($"http://127.0.0.1:{port}"));
        var refused = await Assert.ThrowsAsync<SandboxException>(() => remote.LoadFromPathAsync(file));
        Assert.Equal(ErrorReason.PermissionDenied, refused.Reason);
        Assert.Contains(daemon.AuditRecords(), r => r.Event == "LOAD_REJECTED");
        Assert.Equal(PluginState.Ready, (await remote.LoadAsync(File.ReadAllBytes(file))).State); // the bytes are fine
        await remote.UnloadAsync("com.test.by-path");
        using var local = daemon.Client();
        Assert.Equal(PluginState.Ready, (await local.LoadFromPathAsync(file)).State);
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

/// <summary>
/// Sandbox:WorkerRuntime: the NativeAOT worker the daemon's build publishes (worker-native/) is what runs by default;
/// "jit" runs the worker's DLL through the dotnet host. Each test reads what the kernel says the worker process is.
/// </summary>
public class WorkerRuntimeTests
{
    private static readonly string NativeWorker = Path.Combine(AppContext.BaseDirectory, "worker-native", "connectias-sandbox-worker");

    [Fact]
    public async Task By_default_a_plugin_runs_in_the_native_worker()
    {
        using var daemon = DaemonProcess.Start("{}");
        Assert.Contains($"worker: {NativeWorker} (native", daemon.Log);
        using var client = daemon.Client();
        var info = await client.LoadAsync(daemon.Package("hello", "com.test.aot", ",\"permissions\":[\"storage\",\"system_info\"]"));
        // The pid ListPlugins reports is the worker's own (inside bubblewrap when it works), and its image is the native binary.
        Assert.Equal(NativeWorker, new FileInfo($"/proc/{info.Pid}/exe").LinkTarget);
        Assert.Equal(info.Pid, Assert.Single(await client.ListAsync(), plugin => plugin.PluginId == "com.test.aot").Pid);
        Assert.Equal("Hello, aot!", (await client.ExecuteAsync("com.test.aot", "greet", "aot"u8.ToArray())).Output.ToStringUtf8());
        await ApiErrorTests.Refused(() => client.ExecuteAsync("com.test.aot", "fail"), Grpc.Core.StatusCode.Unknown, "PLUGIN_ERROR");
        Assert.Empty((await client.UnloadAsync("com.test.aot")).Issues);
    }

    [Fact]
    public async Task WorkerRuntime_jit_runs_the_workers_dll_through_dotnet()
    {
        using var daemon = DaemonProcess.Start("{}", ("WorkerRuntime", "jit"));
        Assert.Contains("(jit, through the dotnet host)", daemon.Log);
        using var client = daemon.Client();
        var info = await client.LoadAsync(daemon.Package("hello", "com.test.jit", ",\"permissions\":[\"storage\",\"system_info\"]"));
        Assert.Equal("dotnet", Path.GetFileName(new FileInfo($"/proc/{info.Pid}/exe").ResolveLinkTarget(returnFinalTarget: true)!.FullName));
        var commandLine = File.ReadAllText($"/proc/{info.Pid}/cmdline").Split('\0');
        Assert.Equal(Path.Combine(AppContext.BaseDirectory, "connectias-sandbox-worker.dll"), commandLine[1]);
        Assert.Equal("Hello, jit!", (await client.ExecuteAsync("com.test.jit", "greet", "jit"u8.ToArray())).Output.ToStringUtf8());
        Assert.Empty((await client.UnloadAsync("com.test.jit")).Issues);
    }

    [Fact]
    public void An_unknown_worker_runtime_stops_the_daemon_with_exit_2()
    {
        var (code, _, error) = DaemonProcess.RunToExit(["--state-dir", Path.Combine(Path.GetTempPath(), "never-created-runtime")], [("WorkerRuntime", "aot")]);
        Assert.Equal(2, code);
        Assert.Contains("Sandbox:WorkerRuntime 'aot' is not a worker runtime; use native, jit", error);
    }

    [Fact]
    public void A_missing_native_worker_stops_the_daemon_naming_the_setting_and_the_ways_out()
    {
        // A copy of the daemon without worker-native/, as a build with -p:ConnectiasNativeWorker=false leaves it.
        var copy = Directory.CreateTempSubdirectory("connectias-nonative-").FullName;
        try
        {
            foreach (var file in Directory.EnumerateFiles(AppContext.BaseDirectory).Where(f => f.EndsWith(".dll", StringComparison.Ordinal) || f.EndsWith(".json", StringComparison.Ordinal)))
                File.Copy(file, Path.Combine(copy, Path.GetFileName(file)));
            var state = Path.Combine(Path.GetTempPath(), "never-created-native");
            var (code, _, error) = DotnetProgram.Run(Path.Combine(copy, "connectias-sandboxd.dll"), ["--state-dir", state]);
            Assert.Equal(1, code);
            Assert.Contains($"Sandbox:WorkerRuntime is native, but the native worker {Path.Combine(copy, "worker-native", "connectias-sandbox-worker")} is missing", error);
            Assert.Contains("apt-get install clang zlib1g-dev", error);
            Assert.Contains("Sandbox:WorkerRuntime=jit", error);
            Assert.False(Directory.Exists(state));

            // The same copy starts with the JIT worker, or with Sandbox:WorkerExecutable, which overrides the runtime:
            // both pass the check (and then stop at the next one, a trust directory that does not exist).
            foreach (var setting in new[] { ("Sandbox__WorkerRuntime", "jit"), ("Sandbox__WorkerExecutable", Path.Combine(AppContext.BaseDirectory, "connectias-sandbox-worker")) })
            {
                var other = DotnetProgram.Run(Path.Combine(copy, "connectias-sandboxd.dll"), ["--state-dir", state, "--trust-dir", "/nonexistent/trust"], [setting]);
                Assert.Equal(1, other.ExitCode);
                Assert.DoesNotContain("native worker", other.Error);
                Assert.Contains("TrustDir '/nonexistent/trust' does not exist", other.Error);
            }
        }
        finally
        {
            Directory.Delete(copy, recursive: true);
        }
    }
}
