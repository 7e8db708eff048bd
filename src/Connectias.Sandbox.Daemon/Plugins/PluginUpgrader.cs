using Connectias.Sandbox.Audit;
using Connectias.Sandbox.Daemon.Events;
using Connectias.Sandbox.Daemon.Hosting;
using Connectias.Sandbox.Daemon.Lifecycle;
using Connectias.Sandbox.Daemon.Supervision;
using Connectias.Sandbox.Daemon.Workers;
using Connectias.Sandbox.V1;

namespace Connectias.Sandbox.Daemon.Plugins;

/// <summary>
/// LoadPlugin with <c>replace</c> of a READY plugin: an upgrade without a gap. The new version's worker starts
/// beside the old one; only once it is READY does it take the old one's place, so new calls reach it; calls
/// in flight and queued on the old one finish there (each bounded by its deadline), and then the old one is
/// unloaded with its cleanup report. A new version that fails to load leaves the old one serving. Storage
/// carries over: both versions are the same plugin id. Audited as one PLUGIN_UPGRADE with both versions.
/// </summary>
internal sealed class PluginUpgrader(
    PluginRegistry registry,
    PluginLifecycle lifecycle,
    PluginSupervisor supervisor,
    WorkerStopper stopper,
    PluginUnloader unloader,
    BackgroundTasks tasks,
    AuditTrail audit,
    ILogger<PluginUpgrader> logger)
{
    public async Task<ManagedPlugin> UpgradeAsync(ManagedPlugin old, ManagedPlugin replacement, string source, CancellationToken cancellation)
    {
        registry.BeginUpgrade(replacement);
        try
        {
            return await SwapAsync(old, replacement, source, cancellation);
        }
        finally
        {
            registry.EndUpgrade(replacement);
        }
    }

    private async Task<ManagedPlugin> SwapAsync(ManagedPlugin old, ManagedPlugin replacement, string source, CancellationToken cancellation)
    {
        var from = old.Manifest.Version.ToString();
        var to = replacement.Manifest.Version.ToString();
        // READY without a record of its own: the upgrade is audited once it has happened, below.
        await supervisor.StartAsync(replacement, new Transition(PluginState.Ready) { WriteAudit = false }, cancellation);

        if (!registry.TryReplace(old, replacement))
        {
            // The old version was unloaded, terminated or replaced while the new one loaded: nothing is left to
            // upgrade, and the new version goes as quietly as it came (its load is refused, LOAD_REJECTED says why).
            lifecycle.TryTransition(replacement, new Transition(PluginState.Unloaded)
            {
                Message = "its upgrade did not take place",
                WriteAudit = false,
                Apply = p => { if (p.Current is { } worker) worker.TryBeginStopping(null); },
            });
            if (replacement.Current is { State: WorkerState.Stopping } started) await stopper.StopAsync(started, graceful: false);
            throw new SandboxException(ErrorReason.PluginNotFound, $"plugin {old.Id} {from} was unloaded or ended while its new version {to} loaded", ErrorMetadata.For(old.Id));
        }

        audit.Record(AuditEvents.PluginUpgrade, replacement.Id, json =>
        {
            json.WriteString("from_version", from);
            json.WriteString("to_version", to);
            json.WriteString("source", source);
            json.WriteString("signer", replacement.Signer.Fingerprint ?? "unsigned");
            json.WriteNumber("pid", replacement.Current!.WorkerPid);
        });
        logger.LogInformation("upgraded {PluginId} from {From} to {To}; the old version finishes its calls and unloads", old.Id, from, to);
        tasks.Run($"retire {old.Id} {from}", async () =>
        {
            if (old.Current is { } previous)
            {
                previous.Calls.Complete(); // no new calls: they go to the new version now
                try
                {
                    await previous.Calls.Loop.WaitAsync(tasks.Stopping);
                }
                catch (OperationCanceledException)
                {
                    // the daemon is shutting down: unload now, the calls still queued are failed
                }
            }

            await unloader.RetireAsync(old, replacement);
        });
        return replacement;
    }
}
