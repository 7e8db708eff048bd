using Connectias.Sandbox.Daemon.Hosting;
using Connectias.Sandbox.Daemon.Lifecycle;
using Connectias.Sandbox.Daemon.Policy;
using Connectias.Sandbox.V1;

namespace Connectias.Sandbox.Daemon.UnitTests;

/// <summary>The registry's rules for upgrades and dependents.</summary>
public sealed class PluginRegistryTests : IDisposable
{
    private readonly LifecycleHarness _harness = new();
    private readonly PluginRegistry _registry;

    public PluginRegistryTests() => _registry = new PluginRegistry(new DaemonOptions(), _harness.Lifecycle);

    private PluginLifecycle Lifecycle => _harness.Lifecycle;

    [Fact]
    public void An_upgrade_takes_the_place_of_a_READY_plugin_only()
    {
        var old = Registered("com.test.a", PluginState.Ready);
        Assert.True(_registry.TryReplace(old, Plugin("com.test.a", PluginState.Ready)));

        var unloaded = Registered("com.test.b", PluginState.Ready);
        Lifecycle.TryTransition(unloaded, new Transition(PluginState.Unloaded));
        Assert.False(_registry.TryReplace(unloaded, Plugin("com.test.b", PluginState.Ready))); // unloaded while the new version loaded

        var terminated = Registered("com.test.c", PluginState.Ready);
        Lifecycle.TryTransition(terminated, new Transition(PluginState.Terminated));
        Assert.False(_registry.TryReplace(terminated, Plugin("com.test.c", PluginState.Ready)));
    }

    [Fact]
    public void One_upgrade_of_an_id_at_a_time()
    {
        var replacement = Plugin("com.test.d", PluginState.Loading);
        _registry.BeginUpgrade(replacement);
        Assert.Equal(ErrorReason.AlreadyLoaded, Assert.Throws<SandboxException>(() => _registry.BeginUpgrade(Plugin("com.test.d", PluginState.Loading))).Reason);
        _registry.EndUpgrade(replacement);
        _registry.BeginUpgrade(replacement);
    }

    [Fact]
    public void Dependents_are_the_live_plugins_that_name_it()
    {
        Registered("com.test.base", PluginState.Ready);
        Registered("com.test.app", PluginState.Ready, "com.test.base");
        var gone = Registered("com.test.gone", PluginState.Ready, "com.test.base");
        Lifecycle.TryTransition(gone, new Transition(PluginState.Unloaded));
        Assert.Equal(["com.test.app"], _registry.DependentsOf("com.test.base").Select(p => p.Id));
    }

    [Fact]
    public void An_unload_that_must_leave_no_dependent_behind_checks_and_unloads_in_one_step()
    {
        var dependency = Registered("com.test.lib", PluginState.Ready);
        var dependent = Registered("com.test.user", PluginState.Ready, "com.test.lib");
        var refused = _registry.TryTransitionIfIndependent(dependency, new Transition(PluginState.Unloaded), out var dependents);
        Assert.False(refused.Applied);
        Assert.Equal([dependent], dependents);
        Assert.Equal(PluginState.Ready, dependency.State);

        Lifecycle.TryTransition(dependent, new Transition(PluginState.Unloaded));
        Assert.True(_registry.TryTransitionIfIndependent(dependency, new Transition(PluginState.Unloaded), out dependents).Applied);
        Assert.Empty(dependents);
        // Now nothing can register against it: its dependency is gone.
        Assert.Equal(ErrorReason.DependencyNotMet, Assert.Throws<SandboxException>(() => _registry.Register(Plugin("com.test.late", PluginState.Loading, "com.test.lib"))).Reason);
    }

    private ManagedPlugin Registered(string id, PluginState state, params string[] dependencies)
    {
        var plugin = Plugin(id, PluginState.Loading, dependencies);
        _registry.Register(plugin);
        if (state != PluginState.Loading) Lifecycle.TryTransition(plugin, new Transition(state));
        return plugin;
    }

    private static ManagedPlugin Plugin(string id, PluginState state, params string[] dependencies) =>
        LifecycleHarness.Plugin(id, state, RestartPolicy.Never, dependencies);

    public void Dispose() => _harness.Dispose();
}
