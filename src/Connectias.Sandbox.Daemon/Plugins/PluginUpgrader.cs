using Connectias.Sandbox.Audit;
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
    PluginSupervisor supervisor,
    WorkerStopper stopper,
    PluginUnloader unloader,
    BackgroundTasks tasks,
    ILogger<PluginUpgrader> logger)
{
    public async Task<ManagedPlugin> UpgradeAsync(ManagedPlugin old, ManagedPlugin replacement, string source, CancellationToken cancellation)
    {
        registry.CheckReplacement(replacement);
        var from = old.Manifest.Version.ToString();
        var to = replacement.Manifest.Version.ToString();
        await supervisor.StartAsync(replacement, new Transition(PluginState.Ready)
        {
            AuditEvent = AuditEvents.PluginUpgrade,
            AuditDetails = json =>
            {
                json.WriteString("from_version", from);
                json.WriteString("to_version", to);
                json.WriteString("source", source);
                json.WriteString("signer", replacement.Signer.Fingerprint ?? "unsigned");
                json.WriteNumber("pid", replacement.Current!.WorkerPid);
            },
        }, cancellation);

        if (!registry.TryReplace(old, replacement))
        {
            // The old version was unloaded (or replaced) while the new one loaded: nothing is left to upgrade.
            if (replacement.Current is { } worker && worker.TryBeginStopping(null)) await stopper.StopAsync(worker, graceful: false);
            throw new SandboxException(ErrorReason.PluginNotFound, $"plugin {old.Id} was unloaded while its new version {to} loaded", ErrorMetadata.For(old.Id));
        }

        logger.LogInformation("upgraded {PluginId} from {From} to {To}; the old version finishes its calls and unloads", old.Id, from, to);
        tasks.Run($"retire {old.Id} {from}", async () =>
        {
            if (old.Current is { } previous)
            {
                previous.Calls.Complete(); // no new calls: they go to the new version now
                await previous.Calls.Loop;
            }

            await unloader.RetireAsync(old, replacement);
        });
        return replacement;
    }
}
