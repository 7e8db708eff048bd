using Connectias.Sandbox.Daemon.Network;
using Connectias.Sandbox.Daemon.Policy;
using Connectias.Sandbox.Daemon.Workers;
using Connectias.Sandbox.Packaging;
using Connectias.Sandbox.V1;

namespace Connectias.Sandbox.Daemon.Lifecycle;

/// <summary>
/// A plugin the daemon knows: its verified manifest and module, its grant and effective limits, its state
/// (changed only by <see cref="PluginLifecycle"/>), its current worker and its usage counters.
/// </summary>
internal sealed class ManagedPlugin(PluginManifest manifest, ReadOnlyMemory<byte> module, SignerIdentity signer, PolicyGrant grant, ResourceLimits limits)
{
    /// <summary>Guards State, StateReason, StateMessage, Current, Restarts, RecentRestarts and Module. See PluginLifecycle for the lock order.</summary>
    public Lock Sync { get; } = new();
    public PluginManifest Manifest { get; } = manifest;
    public string Id => Manifest.Id;
    public SignerIdentity Signer { get; } = signer;
    public PolicyGrant Grant { get; } = grant;
    public ResourceLimits Limits { get; } = limits;
    public DateTime LoadedAt { get; } = DateTime.UtcNow;

    /// <summary>
    /// The verified module, kept while a worker may still need it (loading, serving, or a restart is due);
    /// released once the plugin is unloaded or stays down, so an idle registry entry holds no package bytes.
    /// </summary>
    public ReadOnlyMemory<byte>? Module { get; set; } = module;

    public PluginState State { get; set; } = PluginState.Loading;
    public string StateReason { get; set; } = "";
    public string StateMessage { get; set; } = "";

    /// <summary>When the plugin became UNLOADED; the registry forgets it a retention later.</summary>
    public DateTime? UnloadedAt { get; set; }

    /// <summary>The worker serving the plugin now, or the last one (stopped) after a termination.</summary>
    public WorkerHandle? Current { get; set; }
    public uint Restarts { get; set; }
    public Queue<DateTime> RecentRestarts { get; } = new();

    /// <summary>Performs the plugin's network requests; one per plugin, kept across restarts.</summary>
    public NetworkBroker? Broker { get; set; }

    public long Calls;
    public long Failures;
    public long FuelConsumedTotal;
    public long MemoryBytes;
    public long PeakMemoryBytes;
    public long WorkerRssBytes;
    public double WorkerCpuSeconds;

    public void RecordMemory(long memory)
    {
        Interlocked.Exchange(ref MemoryBytes, memory);
        long peak;
        do
        {
            peak = Interlocked.Read(ref PeakMemoryBytes);
            if (memory <= peak) return;
        }
        while (Interlocked.CompareExchange(ref PeakMemoryBytes, memory, peak) != peak);
    }
}
