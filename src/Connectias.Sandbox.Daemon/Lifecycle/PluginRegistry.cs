using System.Globalization;
using Connectias.Sandbox.Daemon.Hosting;
using Connectias.Sandbox.V1;

namespace Connectias.Sandbox.Daemon.Lifecycle;

/// <summary>
/// Every plugin the daemon knows, by id: the live ones, and unloaded ones for <c>UnloadedRetentionSeconds</c>
/// (so ListPlugins and GetPlugin can still show how they ended), after which they are forgotten.
/// </summary>
internal sealed class PluginRegistry(DaemonOptions options, PluginLifecycle lifecycle)
{
    private readonly Lock _lock = new();
    private readonly Dictionary<string, ManagedPlugin> _plugins = new(StringComparer.Ordinal);
    private readonly HashSet<string> _upgrading = new(StringComparer.Ordinal);
    private bool _closed;

    /// <summary>True once the daemon is shutting down: no more loads.</summary>
    public bool IsClosed
    {
        get
        {
            lock (_lock) return _closed;
        }
    }

    /// <summary>
    /// Adds a plugin that is about to load, refusing it while the daemon shuts down, when one of that id is
    /// loading or ready, when the daemon is full, or when a dependency is not ready. A terminated, crashed or
    /// unloaded predecessor is retired (to UNLOADED), so a restart it had scheduled never runs.
    /// </summary>
    public void Register(ManagedPlugin plugin)
    {
        lock (_lock)
        {
            Prune();
            CheckServing(plugin);
            if (_plugins.TryGetValue(plugin.Id, out var existing) && existing.State is PluginState.Loading or PluginState.Ready)
                throw new SandboxException(ErrorReason.AlreadyLoaded, $"plugin {plugin.Id} is already loaded (version {existing.Manifest.Version}); load it with replace to upgrade it",
                    ErrorMetadata.For(plugin.Id));
            CheckCapacity(plugin);
            CheckDependencies(plugin);
            if (existing is not null)
            {
                lifecycle.TryTransition(existing, new Transition(PluginState.Unloaded) { Message = "replaced by a new load" });
                existing.Broker?.Dispose();
            }

            _plugins[plugin.Id] = plugin;
        }
    }

    /// <summary>
    /// Reserves the one upgrade of <paramref name="replacement"/>'s id that may run at a time (so concurrent replaces
    /// cannot start workers without bound), after the checks a replacement must pass before its worker starts:
    /// the daemon serves, its dependencies are ready. An upgrade does not count against MaxPlugins: it adds no
    /// plugin, only a second worker for a moment. <see cref="EndUpgrade"/> releases it.
    /// </summary>
    public void BeginUpgrade(ManagedPlugin replacement)
    {
        lock (_lock)
        {
            CheckServing(replacement);
            if (_upgrading.Contains(replacement.Id))
                throw new SandboxException(ErrorReason.AlreadyLoaded, $"an upgrade of {replacement.Id} is already in progress", ErrorMetadata.For(replacement.Id));
            CheckDependencies(replacement);
            _upgrading.Add(replacement.Id);
        }
    }

    public void EndUpgrade(ManagedPlugin replacement)
    {
        lock (_lock) _upgrading.Remove(replacement.Id);
    }

    /// <summary>
    /// Puts <paramref name="replacement"/> where <paramref name="current"/> is, so new calls reach it; false when
    /// <paramref name="current"/> is no longer the registered, READY plugin of its id (unloaded, terminated or
    /// replaced meanwhile: then there is nothing left to upgrade), or a dependency went away.
    /// </summary>
    public bool TryReplace(ManagedPlugin current, ManagedPlugin replacement)
    {
        lock (_lock)
        {
            if (_closed || !_plugins.TryGetValue(current.Id, out var registered) || registered != current) return false;
            lock (current.Sync)
                if (current.State != PluginState.Ready) return false;
            if (replacement.Manifest.Dependencies.Any(d => !_plugins.TryGetValue(d, out var dependency) || dependency.State != PluginState.Ready)) return false;
            _plugins[current.Id] = replacement;
            return true;
        }
    }

    /// <summary>Whether <paramref name="plugin"/> is still the registered plugin of its id (not replaced by an upgrade or a new load).</summary>
    public bool IsCurrent(ManagedPlugin plugin)
    {
        lock (_lock) return _plugins.TryGetValue(plugin.Id, out var registered) && registered == plugin;
    }

    /// <summary>The plugins, not unloaded, whose manifests list <paramref name="pluginId"/> as a dependency.</summary>
    public IReadOnlyList<ManagedPlugin> DependentsOf(string pluginId)
    {
        lock (_lock) return DependentsOfLocked(pluginId);
    }

    /// <summary>
    /// Applies <paramref name="transition"/> (an unload) only while no live plugin depends on <paramref name="plugin"/>,
    /// the check and the change under the registry's lock, so no dependent registers in between; otherwise
    /// changes nothing and returns the dependents.
    /// </summary>
    public TransitionResult TryTransitionIfIndependent(ManagedPlugin plugin, Transition transition, out IReadOnlyList<ManagedPlugin> dependents)
    {
        lock (_lock)
        {
            dependents = DependentsOfLocked(plugin.Id);
            return dependents.Count > 0 ? default : lifecycle.TryTransition(plugin, transition);
        }
    }

    private List<ManagedPlugin> DependentsOfLocked(string pluginId) =>
        _plugins.Values.Where(p => p.State != PluginState.Unloaded && p.Manifest.Dependencies.Contains(pluginId, StringComparer.Ordinal))
            .OrderBy(p => p.Id, StringComparer.Ordinal).ToList();

    /// <summary>Under the lock: room for one more plugin.</summary>
    private void CheckCapacity(ManagedPlugin plugin)
    {
        var active = _plugins.Values.Count(p => p.State is PluginState.Loading or PluginState.Ready);
        if (active >= options.MaxPlugins)
        {
            throw new SandboxException(ErrorReason.ResourceExhausted, $"{active} plugins are loaded; this daemon allows {options.MaxPlugins}",
                ErrorMetadata.For(plugin.Id, ("limit", options.MaxPlugins.ToString(CultureInfo.InvariantCulture)), ("used", active.ToString(CultureInfo.InvariantCulture))));
        }
    }

    private void CheckServing(ManagedPlugin plugin)
    {
        if (_closed) throw new SandboxException(ErrorReason.PluginCrashed, "the daemon is shutting down", ErrorMetadata.For(plugin.Id));
    }

    /// <summary>Under the lock: every dependency loaded and ready.</summary>
    private void CheckDependencies(ManagedPlugin plugin)
    {
        foreach (var dependency in plugin.Manifest.Dependencies)
        {
            if (!_plugins.TryGetValue(dependency, out var loaded) || loaded.State != PluginState.Ready)
            {
                throw new SandboxException(ErrorReason.DependencyNotMet, $"plugin {plugin.Id} depends on {dependency}, which is not loaded and ready",
                    ErrorMetadata.For(plugin.Id, ("dependency", dependency)));
            }
        }
    }

    /// <summary>Takes back a registration whose load failed, unless another plugin of that id replaced it meanwhile.</summary>
    public void Withdraw(ManagedPlugin plugin)
    {
        lock (_lock)
            if (_plugins.TryGetValue(plugin.Id, out var registered) && registered == plugin)
                _plugins.Remove(plugin.Id);
    }

    public ManagedPlugin Find(string pluginId)
    {
        lock (_lock)
        {
            Prune();
            return _plugins.TryGetValue(pluginId, out var plugin)
                ? plugin
                : throw new SandboxException(ErrorReason.PluginNotFound, $"no plugin {pluginId} is loaded", ErrorMetadata.For(pluginId));
        }
    }

    /// <summary>Every plugin known, unloaded ones within their retention included, by id.</summary>
    public IReadOnlyList<ManagedPlugin> All()
    {
        lock (_lock)
        {
            Prune();
            return _plugins.Values.OrderBy(p => p.Id, StringComparer.Ordinal).ToList();
        }
    }

    /// <summary>Plugins in the given states.</summary>
    public IReadOnlyList<ManagedPlugin> InState(params PluginState[] states)
    {
        lock (_lock) return _plugins.Values.Where(p => states.Contains(p.State)).ToList();
    }

    /// <summary>Refuses every later registration; the plugins registered so far are returned for the caller to unload.</summary>
    public IReadOnlyList<ManagedPlugin> Close()
    {
        lock (_lock)
        {
            _closed = true;
            return _plugins.Values.Where(p => p.State != PluginState.Unloaded).ToList();
        }
    }

    /// <summary>Forgets unloaded plugins older than the retention. Called under the lock on every lookup, so no timer is needed.</summary>
    private void Prune()
    {
        var cutoff = DateTime.UtcNow - options.UnloadedRetention;
        foreach (var expired in _plugins.Values.Where(p => p.State == PluginState.Unloaded && p.UnloadedAt < cutoff).ToList())
            _plugins.Remove(expired.Id);
    }
}
