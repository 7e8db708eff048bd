using System.Diagnostics;
using System.Text;
using Connectias.Sandbox.Contracts;
using Connectias.Sandbox.V1;
using Grpc.Core;
using Grpc.Health.V1;

namespace Connectias.Sandbox.Daemon.Tests;

[Collection("daemon")]
public class LifecycleTests(SharedDaemon shared)
{
    private const string HelloPermissions = ",\"permissions\":[\"storage\",\"system_info\"]";
    private readonly DaemonProcess _daemon = shared.Daemon;

    [Fact]
    public void The_socket_is_private_to_the_daemons_user()
    {
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(_daemon.SocketPath));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(Path.GetDirectoryName(_daemon.SocketPath)!));
    }

    [Fact]
    public async Task Health_reports_serving()
    {
        using var channel = UnixSocketChannel.Create(_daemon.SocketPath);
        var health = new Health.HealthClient(channel);
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, (await health.CheckAsync(new HealthCheckRequest())).Status);
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, (await health.CheckAsync(new HealthCheckRequest { Service = "connectias.sandbox.v1.PluginHost" })).Status);
    }

    [Fact]
    public void The_log_says_which_sandbox_is_in_force() =>
        Assert.Contains(File.Exists("/usr/bin/bwrap") ? "worker sandbox: bubblewrap" : "worker sandbox: plain child process", _daemon.Log);

    [Fact]
    public async Task A_loaded_plugin_is_described_fully_and_runs_in_its_own_process()
    {
        using var client = _daemon.Client();
        var info = await client.LoadAsync(_daemon.Package("hello", "com.test.described", HelloPermissions + ",\"resource_limits\":{\"memory_bytes\":33554432,\"fuel_per_call\":99999999999}"));
        Assert.Equal(PluginState.Ready, info.State);
        Assert.Equal(_daemon.Key.Fingerprint, info.SignerFingerprint);
        Assert.Equal(["storage", "system_info"], info.GrantedPermissions);
        Assert.Equal(33554432UL, info.Limits.MemoryBytes); // asked for less than the cap
        Assert.Equal(1_000_000UL, info.Limits.FuelPerCall); // asked for more: capped by policy
        Assert.True(info.Pid > 0 && info.Pid != _daemon.Pid);
        Assert.True(Directory.Exists($"/proc/{info.Pid}"));

        var result = await client.ExecuteAsync("com.test.described", "greet", "Grace"u8.ToArray());
        Assert.Equal("Hello, Grace!", result.Output.ToStringUtf8());
        Assert.True(result.Stats.FuelConsumed > 0 && result.Stats.DurationUs > 0 && result.Stats.MemoryBytes > 0);

        await Task.Delay(600); // a monitoring round
        var usage = (await client.GetAsync("com.test.described")).Usage;
        Assert.Equal(1UL, usage.Calls);
        Assert.True(usage.FuelConsumedTotal >= result.Stats.FuelConsumed);
        Assert.True(usage.WorkerRssBytes > 10_000_000, $"worker RSS {usage.WorkerRssBytes}");
        Assert.Contains(await client.ListAsync(), p => p.PluginId == "com.test.described");
    }

    [Fact]
    public async Task The_worker_runs_without_network_when_bubblewrap_is_in_force()
    {
        if (!_daemon.Log.Contains("worker sandbox: bubblewrap", StringComparison.Ordinal)) return; // the plain sandbox has no namespaces to check
        using var client = _daemon.Client();
        var info = await client.LoadAsync(_daemon.Package("noop", "com.test.isolated"));
        var ownNet = new FileInfo("/proc/self/ns/net").LinkTarget;
        var workerNets = Descendants(info.Pid).Select(pid => new FileInfo($"/proc/{pid}/ns/net").LinkTarget).ToList();
        Assert.NotEmpty(workerNets);
        Assert.All(workerNets, net => Assert.NotEqual(ownNet, net)); // the pid shown is the worker's own, inside bubblewrap
        Assert.Contains("connectias-sandbox-worker", File.ReadAllText($"/proc/{info.Pid}/cmdline"));
    }

    [Fact]
    public async Task Unload_runs_plugin_cleanup_and_verifies_everything_is_gone()
    {
        using var client = _daemon.Client();
        var info = await client.LoadAsync(_daemon.Package("hello", "com.test.unloaded", HelloPermissions));
        var tree = Descendants(info.Pid);
        var runDirectories = Directory.GetDirectories(Path.Combine(_daemon.StateDir, "run", "plugins"), "com.test.unloaded-*");
        Assert.Single(runDirectories);

        var report = await client.UnloadAsync("com.test.unloaded");
        Assert.True(report.PluginCleanupCalled);
        Assert.Equal(0, report.PluginCleanupCode);
        Assert.Empty(report.Issues);
        Assert.All(tree, pid => Assert.False(IsAlive(pid), $"process {pid} survived the unload"));
        Assert.False(Directory.Exists(runDirectories[0]));

        Assert.Equal(PluginState.Unloaded, (await client.GetAsync("com.test.unloaded")).State);
        await ApiErrorTests.Refused(() => client.ExecuteAsync("com.test.unloaded", "greet"), StatusCode.NotFound, "PLUGIN_NOT_FOUND");
        Assert.Equal(PluginState.Ready, (await client.LoadAsync(_daemon.Package("hello", "com.test.unloaded", HelloPermissions))).State); // and loads again
    }

    [Fact]
    public async Task Events_stream_lifecycle_changes_violations_and_audit_records()
    {
        using var client = _daemon.Client();
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var seen = new List<Event>();
        var watching = Task.Run(async () =>
        {
            await foreach (var item in client.WatchEventsAsync("com.test.watched", stop.Token))
            {
                lock (seen) seen.Add(item);
                if (item.PayloadCase == Event.PayloadOneofCase.Audit && item.Audit.Event == "PLUGIN_TERMINATED") return;
            }
        });
        await Task.Delay(1000); // the watch is established (the server subscribes when the call arrives)
        await client.LoadAsync(_daemon.Package("unreachable", "com.test.watched"));
        await Assert.ThrowsAsync<SandboxException>(() => client.ExecuteAsync("com.test.watched", "run"));
        await watching.WaitAsync(TimeSpan.FromSeconds(30));

        lock (seen)
        {
            Assert.Contains(seen, e => e.StateChanged is { Previous: PluginState.Loading, Current: PluginState.Ready });
            Assert.Contains(seen, e => e.StateChanged is { Current: PluginState.Terminated, Reason: "PLUGIN_TRAPPED" });
            Assert.Contains(seen, e => e.Violation is { Reason: "PLUGIN_TRAPPED" });
            Assert.Contains(seen, e => e.Audit is { Event: "PLUGIN_LOAD" });
            Assert.All(seen, e => Assert.Equal("com.test.watched", e.PluginId));
            Assert.True(seen.Select(e => e.Seq).SequenceEqual(seen.Select(e => e.Seq).Order()));
        }
    }

    [Fact]
    public async Task A_plugin_with_restart_on_failure_comes_back()
    {
        using var client = _daemon.Client();
        await client.LoadAsync(_daemon.Package("unreachable", "com.test.phoenix"));
        var firstPid = (await client.GetAsync("com.test.phoenix")).Pid;
        await Assert.ThrowsAsync<SandboxException>(() => client.ExecuteAsync("com.test.phoenix", "run"));
        var info = await ApiErrorTests.WaitForState(client, "com.test.phoenix", PluginState.Ready);
        Assert.Equal(PluginState.Ready, info.State);
        Assert.Equal(1U, info.Restarts);
        Assert.NotEqual(firstPid, info.Pid);
    }

    [Fact]
    public async Task A_worker_killed_mid_call_fails_that_call_only()
    {
        using var client = _daemon.Client();
        await client.LoadAsync(_daemon.Package("infinite_loop", "com.test.victim", ",\"resource_limits\":{\"fuel_per_call\":1000000000000}"));
        await client.LoadAsync(_daemon.Package("hello", "com.test.bystander", HelloPermissions));
        var victim = await client.GetAsync("com.test.victim");

        var call = client.ExecuteAsync("com.test.victim", "run");
        await Task.Delay(100);
        foreach (var pid in Descendants(victim.Pid)) Kill(pid);
        await ApiErrorTests.Refused(() => call, StatusCode.Unavailable, "PLUGIN_CRASHED", "com.test.victim");

        for (var i = 0; i < 5; i++)
            Assert.Equal("Hello, still here!", (await client.ExecuteAsync("com.test.bystander", "greet", "still here"u8.ToArray())).Output.ToStringUtf8());
        using var channel = UnixSocketChannel.Create(_daemon.SocketPath);
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, (await new Health.HealthClient(channel).CheckAsync(new HealthCheckRequest())).Status);
    }

    [Fact]
    public async Task A_worker_killed_while_the_plugin_is_in_host_calls_is_CRASHED()
    {
        using var client = _daemon.Client();
        var info = await client.LoadAsync(_daemon.Package("host_call_loop", "com.test.victim2", ",\"resource_limits\":{\"fuel_per_call\":1000000000000}"));
        var call = client.ExecuteAsync("com.test.victim2", "run");
        await Task.Delay(100);
        foreach (var pid in Descendants(info.Pid)) Kill(pid);
        await ApiErrorTests.Refused(() => call, StatusCode.Unavailable, "PLUGIN_CRASHED", "com.test.victim2");
        Assert.Equal(PluginState.Crashed, (await ApiErrorTests.WaitForState(client, "com.test.victim2", PluginState.Crashed)).State);
    }

    [Fact]
    public async Task Many_clients_calling_many_plugins_get_their_own_answers()
    {
        const int plugins = 4, clients = 8, callsPerClient = 25;
        using (var loader = _daemon.Client())
            for (var p = 0; p < plugins; p++) await loader.LoadAsync(_daemon.Package("hello", $"com.test.crowd{p}", HelloPermissions));

        var tasks = Enumerable.Range(0, clients).Select(c => Task.Run(async () =>
        {
            using var client = _daemon.Client();
            for (var i = 0; i < callsPerClient; i++)
            {
                var plugin = $"com.test.crowd{(c + i) % plugins}";
                var payload = Encoding.UTF8.GetBytes($"client {c} call {i} to {plugin}");
                var response = await client.ExecuteAsync(plugin, "echo", payload);
                Assert.Equal(payload, response.Output.ToByteArray());
            }
        })).ToList();
        await Task.WhenAll(tasks);

        using var check = _daemon.Client();
        var total = 0UL;
        for (var p = 0; p < plugins; p++) total += (await check.GetAsync($"com.test.crowd{p}")).Usage.Calls;
        Assert.Equal((ulong)(clients * callsPerClient), total);
    }

    internal static List<int> Descendants(int pid)
    {
        var all = new List<int> { pid };
        for (var i = 0; i < all.Count; i++)
        {
            foreach (var task in Directory.Exists($"/proc/{all[i]}/task") ? Directory.GetDirectories($"/proc/{all[i]}/task") : [])
            {
                try
                {
                    all.AddRange(File.ReadAllText(Path.Combine(task, "children")).Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(int.Parse));
                }
                catch (IOException)
                {
                }
            }
        }

        return all;
    }

    internal static bool IsAlive(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            return stat[stat.LastIndexOf(')') + 2] is not ('Z' or 'X');
        }
        catch (IOException)
        {
            return false;
        }
    }

    internal static void Kill(int pid)
    {
        using var kill = Process.Start("kill", ["-KILL", pid.ToString()]);
        kill.WaitForExit();
    }
}
