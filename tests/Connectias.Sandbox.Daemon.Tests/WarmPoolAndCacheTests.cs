using System.Diagnostics;
using Connectias.Sandbox.V1;

namespace Connectias.Sandbox.Daemon.Tests;

/// <summary>Sandbox:WarmWorkers and the compiled-module cache, through a real daemon and real workers.</summary>
public sealed class WarmPoolAndCacheTests
{
    private const string HelloPermissions = ",\"permissions\":[\"storage\",\"system_info\"]";
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(20);

    [Fact]
    public async Task Warm_workers_wait_ahead_a_load_takes_one_and_the_pool_fills_again()
    {
        using var daemon = DaemonProcess.Start("{}");
        await Eventually(() => PoolWorkers(daemon).Count == 2, () => daemon.Log);
        var waiting = PoolWorkers(daemon);

        using var client = daemon.Client();
        var info = await client.LoadAsync(daemon.Package("noop", "com.test.pooled"));
        Assert.Contains(info.Pid, waiting.Values);
        Assert.Single(daemon.PluginRunDirectories("com.test.pooled")); // the run directory took the plugin's name

        await Eventually(() => PoolWorkers(daemon).Count == 2);
        Assert.DoesNotContain(info.Pid, PoolWorkers(daemon).Values);
        Assert.Empty((await client.ExecuteAsync("com.test.pooled", "run")).Output);
    }

    [Fact]
    public async Task Without_warm_workers_none_waits_and_loads_start_their_own()
    {
        using var daemon = DaemonProcess.Start("{}", ("WarmWorkers", "0"));
        using var client = daemon.Client();
        Assert.Equal(PluginState.Ready, (await client.LoadAsync(daemon.Package("noop", "com.test.cold"))).State);
        Assert.Empty(PoolWorkers(daemon));
        Assert.False(Directory.Exists(Path.Combine(daemon.StateDir, "storage-pool")) && Directory.EnumerateFileSystemEntries(Path.Combine(daemon.StateDir, "storage-pool")).Any());
    }

    [Fact]
    public async Task A_warm_worker_gives_a_storage_plugin_its_own_directory_and_values_survive_a_reload_into_another()
    {
        using var daemon = DaemonProcess.Start("{}");
        using var client = daemon.Client();
        const string id = "com.test.pooled-storage";
        await Eventually(() => PoolWorkers(daemon).Count == 2);
        await client.LoadAsync(daemon.Package("hello", id, HelloPermissions));
        Assert.Equal("stored", (await client.ExecuteAsync(id, "store", "colour=green"u8.ToArray())).Output.ToStringUtf8());
        await client.UnloadAsync(id);

        await Eventually(() => PoolWorkers(daemon).Count == 2);
        await client.LoadAsync(daemon.Package("hello", id, HelloPermissions));
        Assert.Equal("green", (await client.ExecuteAsync(id, "load", "colour"u8.ToArray())).Output.ToStringUtf8());
        Assert.Equal("stored", (await client.ExecuteAsync(id, "store", "shape=round"u8.ToArray())).Output.ToStringUtf8());
        Assert.Equal(2, Directory.GetFiles(Path.Combine(daemon.StateDir, "storage", id)).Length); // the plugin's own directory holds both

        // A plugin without storage keeps no slot: only the waiting workers have one.
        await client.LoadAsync(daemon.Package("noop", "com.test.no-storage"));
        await Eventually(() => PoolWorkers(daemon).Count == 2);
        Assert.Equal(PoolWorkers(daemon).Count, Directory.GetDirectories(Path.Combine(daemon.StateDir, "storage-pool")).Length);
    }

    [Theory]
    [InlineData("flip a byte")]
    [InlineData("truncate")]
    public async Task A_reload_uses_the_cached_compiled_module_and_a_damaged_entry_is_discarded_and_compiled_again(string damage)
    {
        using var daemon = DaemonProcess.Start("{}");
        using var client = daemon.Client();
        const string id = "com.test.cached";
        await client.LoadAsync(daemon.Package("hello", id, HelloPermissions));
        await client.UnloadAsync(id);
        var entry = Assert.Single(Directory.GetFiles(Path.Combine(daemon.StateDir, "cache", "modules"), "*.cwasm"));

        await client.LoadAsync(daemon.Package("hello", id, HelloPermissions));
        await Eventually(() => daemon.Log.Contains("loaded (compiled code from the cache", StringComparison.Ordinal));
        await client.UnloadAsync(id);

        var bytes = File.ReadAllBytes(entry);
        if (damage == "truncate") bytes = bytes[..(bytes.Length / 3)];
        else bytes[bytes.Length / 2] ^= 0x20;
        File.WriteAllBytes(entry, bytes);

        await client.LoadAsync(daemon.Package("hello", id, HelloPermissions));
        Assert.Equal("Hello, cache!", (await client.ExecuteAsync(id, "greet", "cache"u8.ToArray())).Output.ToStringUtf8());
        Assert.Contains("compiled-module cache: discarded", daemon.Log);
        Assert.True(File.Exists(entry)); // compiled again and kept again
        Assert.NotEqual(bytes, File.ReadAllBytes(entry));
    }

    [Fact]
    public async Task A_module_the_load_checks_refuse_is_not_kept_in_the_cache()
    {
        using var daemon = DaemonProcess.Start("{}");
        using var client = daemon.Client();
        var error = await Assert.ThrowsAsync<SandboxException>(() => client.LoadAsync(daemon.Package("missing_export", "com.test.refused")));
        Assert.Equal(ErrorReason.CorruptedData, error.Reason);
        var modules = Path.Combine(daemon.StateDir, "cache", "modules");
        Assert.True(!Directory.Exists(modules) || Directory.GetFiles(modules, "*.cwasm").Length == 0);
    }

    /// <summary>Workers waiting in the pool: run directory name → pid of the worker process itself (inside bubblewrap or not).</summary>
    private static Dictionary<string, int> PoolWorkers(DaemonProcess daemon)
    {
        var root = Path.Combine(daemon.RunDirectory, "plugins");
        var workers = new Dictionary<string, int>();
        foreach (var proc in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(proc), out var pid)) continue;
            try
            {
                var argv = File.ReadAllText(Path.Combine(proc, "cmdline")).Split('\0');
                var socket = Array.IndexOf(argv, "--socket") is var at and >= 0 && at + 1 < argv.Length ? argv[at + 1] : null;
                if (socket is null || !argv[0].EndsWith("connectias-sandbox-worker", StringComparison.Ordinal) || !LifecycleTests.IsAlive(pid)) continue;
                var directory = Path.GetDirectoryName(socket)!;
                // A taken worker's command line still names its pool directory, which has the plugin's name by now.
                if (Path.GetDirectoryName(directory) == root && Path.GetFileName(directory).StartsWith("pool-", StringComparison.Ordinal) && Directory.Exists(directory))
                    workers[Path.GetFileName(directory)] = pid;
            }
            catch (IOException)
            {
                // gone meanwhile
            }
        }

        return workers;
    }

    private static async Task Eventually(Func<bool> condition, Func<string>? explain = null)
    {
        var clock = Stopwatch.StartNew();
        while (!condition() && clock.Elapsed < Patience) await Task.Delay(50);
        Assert.True(condition(), explain?.Invoke());
    }
}

/// <summary>What an idle plugin costs: its (native) worker and the warm workers beside it use no CPU and do not wake up.</summary>
public sealed class IdleWorkerTests
{
    [Fact]
    public async Task Idle_workers_loaded_or_warm_use_no_CPU_and_do_not_wake_up()
    {
        using var daemon = DaemonProcess.Start("{}");
        using var client = daemon.Client();
        var info = await client.LoadAsync(daemon.Package("hello", "com.test.idle", ",\"permissions\":[\"storage\",\"system_info\"]"));
        for (var i = 0; i < 50; i++) await client.ExecuteAsync("com.test.idle", "greet", "idle"u8.ToArray());
        await Task.Delay(TimeSpan.FromSeconds(1));
        var workers = LifecycleTests.Descendants(daemon.Pid).Where(pid => File.ReadAllText($"/proc/{pid}/comm").StartsWith("connectias-sand", StringComparison.Ordinal)).ToList();
        Assert.Contains(info.Pid, workers);
        Assert.True(workers.Count >= 2, $"expected the plugin's worker and warm ones, found {workers.Count}");

        var before = workers.ToDictionary(pid => pid, ProcessCounters.Read);
        await Task.Delay(TimeSpan.FromSeconds(3));
        foreach (var pid in workers)
        {
            var after = ProcessCounters.Read(pid);
            // Counts, not timings: the old 5 ms epoch timer alone was ~600 wake-ups and several ticks in 3 s.
            Assert.True(after.CpuTicks - before[pid].CpuTicks <= 1, $"worker {pid} used {after.CpuTicks - before[pid].CpuTicks} CPU ticks in 3 s of idling");
            Assert.True(after.ContextSwitches - before[pid].ContextSwitches <= 10, $"worker {pid} woke up {after.ContextSwitches - before[pid].ContextSwitches} times in 3 s of idling");
        }
    }
}
