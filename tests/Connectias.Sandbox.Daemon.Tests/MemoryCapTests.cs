using Grpc.Core;

namespace Connectias.Sandbox.Daemon.Tests;

/// <summary>
/// Memory limits that hold within one instruction or one compile (issue 12, item 2), through the real daemon and
/// worker: the linear memory's cap is Wasmtime's memory creator's, the worker's RLIMIT_DATA is set from the plugin's
/// limit before its module is compiled, and the daemon keeps serving.
/// </summary>
[Collection("daemon")]
public sealed class MemoryCapTests(SharedDaemon shared)
{
    private const string HelloPermissions = ",\"permissions\":[\"storage\",\"system_info\"]";
    private readonly DaemonProcess _daemon = shared.Daemon;

    [Fact]
    public async Task Four_plugins_filling_a_GiB_at_once_are_each_refused_the_growth_and_end_with_MEMORY_LIMIT_EXCEEDED()
    {
        using var client = _daemon.Client();
        var ids = Enumerable.Range(1, 4).Select(i => $"com.test.fill-bomb-{i}").ToList();
        foreach (var id in ids) await client.LoadAsync(_daemon.Package("fill_bomb", id, ",\"resource_limits\":{\"memory_bytes\":16777216}"));
        var daemonPeakBefore = ProcFs.PeakRssBytes(_daemon.Pid);

        var errors = await Task.WhenAll(ids.Select(id => ApiErrorTests.Refused(() => client.ExecuteAsync(id, "run"), StatusCode.ResourceExhausted, "MEMORY_LIMIT_EXCEEDED", id)));
        Assert.All(errors, error => Assert.Equal((65536L + 16384 * 65536).ToString(System.Globalization.CultureInfo.InvariantCulture), error.Metadata["used"]));
        foreach (var id in ids) Assert.Equal("MEMORY_LIMIT_EXCEEDED", (await ApiErrorTests.WaitForState(client, id, V1.PluginState.Terminated)).StateReason);
        // The daemon held none of it (a count, not a timing: its peak resident memory did not move by a GiB).
        Assert.True(ProcFs.PeakRssBytes(_daemon.Pid) - daemonPeakBefore < 256L * 1024 * 1024);
        foreach (var id in ids) await client.UnloadAsync(id);
    }

    [Fact]
    public async Task A_compile_bomb_is_refused_with_RESOURCE_EXHAUSTED_under_its_workers_memory_cap_and_the_daemon_serves_on()
    {
        using var client = _daemon.Client();
        const string id = "com.test.compile-bomb";
        var bomb = _daemon.PackageModule(CompileBomb.Module(2_500_000), id);
        var daemonPeakBefore = ProcFs.PeakRssBytes(_daemon.Pid);
        var error = await ApiErrorTests.Refused(() => client.LoadAsync(bomb), StatusCode.ResourceExhausted, "RESOURCE_EXHAUSTED", id);
        Assert.Contains("needed more memory than its worker's cap", error.Message); // its allocator said so as the cap stopped it
        Assert.Contains(_daemon.AuditRecords(), r => r.Event == "LOAD_REJECTED" && r.PluginId == id);
        // A count, not a timing: the daemon's peak RSS grew by less than the gigabytes the compile would take (it holds the
        // 7.5 MB package a few times over, and never compiles a module itself).
        Assert.True(ProcFs.PeakRssBytes(_daemon.Pid) - daemonPeakBefore < 512L * 1024 * 1024, "the daemon itself never compiles a module");

        await client.LoadAsync(_daemon.Package("hello", "com.test.after-bomb", HelloPermissions));
        Assert.Equal("Hello, bomb!", (await client.ExecuteAsync("com.test.after-bomb", "greet", "bomb"u8.ToArray())).Output.ToStringUtf8());
        await client.UnloadAsync("com.test.after-bomb");
    }
}
