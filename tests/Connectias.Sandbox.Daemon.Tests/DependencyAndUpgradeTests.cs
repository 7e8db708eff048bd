using System.Diagnostics;
using System.Text.Json;
using Connectias.Sandbox.TestSupport;
using Connectias.Sandbox.V1;
using Grpc.Core;

namespace Connectias.Sandbox.Daemon.Tests;

/// <summary>Dependencies hold at unload (cascade on request), and a reload with replace upgrades without a gap.</summary>
public sealed class DependencyAndUpgradeTests(DependencyAndUpgradeTests.Daemon fixture) : IClassFixture<DependencyAndUpgradeTests.Daemon>
{
    public sealed class Daemon : IDisposable
    {
        public DaemonProcess Process { get; } = DaemonProcess.Start("{}");

        public void Dispose() => Process.Dispose();
    }

    private const string HelloPermissions = ",\"permissions\":[\"storage\",\"system_info\"]";
    private readonly DaemonProcess _daemon = fixture.Process;

    [Fact]
    public async Task Unloading_a_plugin_others_depend_on_is_refused_naming_them_unless_cascade()
    {
        using var client = _daemon.Client();
        await client.LoadAsync(_daemon.Package("noop", "com.test.base"));
        await client.LoadAsync(_daemon.Package("noop", "com.test.app", ",\"dependencies\":[\"com.test.base\"]"));
        await client.LoadAsync(_daemon.Package("noop", "com.test.app2", ",\"dependencies\":[\"com.test.app\"]"));
        await client.LoadAsync(_daemon.Package("noop", "com.test.bystander"));

        var refused = await ApiErrorTests.Refused(() => client.UnloadAsync("com.test.base"), StatusCode.FailedPrecondition, "DEPENDENCY_NOT_MET", "com.test.base");
        Assert.Equal(["com.test.app", "com.test.app2"], refused.Metadata["dependents"].Split(',').Order(StringComparer.Ordinal));
        Assert.Equal(PluginState.Ready, (await client.GetAsync("com.test.base")).State); // nothing happened

        var cli = new StringWriter();
        var cliError = new StringWriter();
        Assert.Equal(1, Cli.CliApp.Run(["unload", "com.test.app", "--socket", _daemon.SocketPath], cli, cliError));
        Assert.StartsWith("DEPENDENCY_NOT_MET: ", cliError.ToString());
        Assert.Equal(0, Cli.CliApp.Run(["unload", "com.test.base", "--cascade", "--socket", _daemon.SocketPath], cli, cliError));

        foreach (var id in new[] { "com.test.base", "com.test.app", "com.test.app2" })
            Assert.Equal(PluginState.Unloaded, (await client.GetAsync(id)).State);
        Assert.Equal(PluginState.Ready, (await client.GetAsync("com.test.bystander")).State);
        var unloads = _daemon.AuditRecords().Where(r => r.Event == "PLUGIN_UNLOAD").Select(r => r.PluginId).ToList();
        Assert.True(unloads.IndexOf("com.test.app2") < unloads.IndexOf("com.test.app") && unloads.IndexOf("com.test.app") < unloads.IndexOf("com.test.base"),
            $"dependents first: {string.Join(", ", unloads)}");
    }

    [Fact]
    public async Task A_replace_moves_calls_to_the_new_version_without_a_gap_keeps_storage_and_is_one_PLUGIN_UPGRADE()
    {
        const string id = "com.test.upgraded";
        using var client = _daemon.Client();
        var v1 = await client.LoadAsync(_daemon.Package("hello", id, HelloPermissions, version: "1.0.0"));
        Assert.Equal("stored", (await client.ExecuteAsync(id, "store", "color=teal"u8.ToArray())).Output.ToStringUtf8());
        await ApiErrorTests.Refused(() => client.LoadAsync(_daemon.Package("hello", id, HelloPermissions, version: "2.0.0")), StatusCode.AlreadyExists, "ALREADY_LOADED", id);

        // Callers keep calling through the upgrade: every call succeeds, answered by 1.0.0 and then by 2.0.0.
        using var stop = new CancellationTokenSource();
        var versions = new List<string>();
        var caller = Task.Run(async () =>
        {
            using var own = _daemon.Client();
            while (!stop.IsCancellationRequested)
            {
                using var context = JsonDocument.Parse((await own.ExecuteAsync(id, "context")).Output.Memory);
                versions.Add(context.RootElement.GetProperty("version").GetString()!);
            }
        });
        while (versions.Count < 5) await Task.Delay(10);
        var v2 = await client.LoadAsync(_daemon.Package("hello", id, HelloPermissions, version: "2.0.0"), replace: true);
        var seenAfter = versions.Count;
        while (versions.Count < seenAfter + 5) await Task.Delay(10);
        await stop.CancelAsync();
        await caller; // throws if any call failed

        Assert.Equal("2.0.0", v2.Version);
        Assert.NotEqual(v1.Pid, v2.Pid);
        Assert.Equal("1.0.0", versions[0]);
        Assert.Equal("2.0.0", versions[^1]);
        var firstNew = versions.IndexOf("2.0.0");
        Assert.All(versions.Skip(firstNew), version => Assert.Equal("2.0.0", version)); // once moved, never back
        Assert.Equal("teal", (await client.ExecuteAsync(id, "load", "color"u8.ToArray())).Output.ToStringUtf8()); // storage carried over

        // The old version finishes, unloads with its cleanup report, and its worker is gone.
        var clock = Stopwatch.StartNew();
        while (!_daemon.AuditRecords().Any(r => r.Event == "CLEANUP_REPORT" && r.PluginId == id && r.Details.GetProperty("version").GetString() == "1.0.0"))
        {
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(30), "the old version was never unloaded");
            await Task.Delay(50);
        }

        Assert.False(LifecycleTests.IsAlive(v1.Pid));
        var upgrade = Assert.Single(_daemon.AuditRecords(), r => r.Event == "PLUGIN_UPGRADE" && r.PluginId == id);
        Assert.Equal(("1.0.0", "2.0.0"), (upgrade.Details.GetProperty("from_version").GetString(), upgrade.Details.GetProperty("to_version").GetString()));
        Assert.DoesNotContain(_daemon.AuditRecords(), r => r.Event == "PLUGIN_UNLOAD" && r.PluginId == id);
        Assert.Equal(2, _daemon.AuditRecords().Count(r => r.Event == "PERMISSION_GRANT" && r.PluginId == id)); // each version's grant

        // A new version that fails to load leaves the one serving in place.
        await ApiErrorTests.Refused(() => client.LoadAsync(_daemon.Package("init_error", id, "", version: "3.0.0"), replace: true),
            StatusCode.FailedPrecondition, "INIT_FAILED", id);
        var after = await client.GetAsync(id);
        Assert.Equal((PluginState.Ready, "2.0.0", v2.Pid), (after.State, after.Version, after.Pid));
        Assert.Contains("Hello, again!", (await client.ExecuteAsync(id, "greet", "again"u8.ToArray())).Output.ToStringUtf8());
    }

    [Fact]
    public async Task A_replace_of_a_plugin_that_is_not_loaded_is_an_ordinary_load()
    {
        using var client = _daemon.Client();
        Assert.Equal(PluginState.Ready, (await client.LoadAsync(_daemon.Package("noop", "com.test.fresh"), replace: true)).State);
        Assert.DoesNotContain(_daemon.AuditRecords(), r => r.Event == "PLUGIN_UPGRADE" && r.PluginId == "com.test.fresh");
    }
}
