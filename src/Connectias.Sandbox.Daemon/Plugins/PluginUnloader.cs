using System.Diagnostics;
using Connectias.Sandbox.Audit;
using Connectias.Sandbox.Daemon.Events;
using Connectias.Sandbox.Daemon.Hosting;
using Connectias.Sandbox.Daemon.Lifecycle;
using Connectias.Sandbox.Daemon.Network;
using Connectias.Sandbox.Daemon.Workers;
using Connectias.Sandbox.WorkerProtocol;
using Connectias.Sandbox.V1;
using WorkerV1 = Connectias.Sandbox.Worker.V1;

namespace Connectias.Sandbox.Daemon.Plugins;

/// <summary>
/// UnloadPlugin: UNLOADED at once (new calls are refused), the call in flight may finish, <c>plugin_cleanup</c>
/// runs, the worker is stopped, and the report says what, if anything, could not be verified gone.
/// </summary>
internal sealed class PluginUnloader(
    DaemonOptions options,
    PluginRegistry registry,
    PluginLifecycle lifecycle,
    WorkerStopper stopper,
    AuditTrail audit,
    RepeatedAuditRecords repeats,
    ILogger<PluginUnloader> logger)
{
    private static readonly TimeSpan NetworkDrainTimeout = TimeSpan.FromSeconds(2);

    /// <summary>
    /// UnloadPlugin. A plugin that loaded plugins depend on is DEPENDENCY_NOT_MET naming them, unless
    /// <paramref name="cascade"/>: then they are unloaded first, dependents of dependents before them.
    /// </summary>
    public async Task<CleanupReport> UnloadAsync(string pluginId, bool cascade = false)
    {
        var plugin = registry.Find(pluginId);
        for (var round = 1; ; round++)
        {
            var dependents = DependentsClosure(plugin.Id);
            if (dependents.Count > 0 && !cascade) throw DependencyNotMet(plugin, dependents);
            foreach (var dependent in dependents)
            {
                try
                {
                    await UnloadOneAsync(dependent, $"unloaded with {plugin.Id} (cascade)", writeAudit: true, whileIndependent: false);
                }
                catch (SandboxException e) when (e.Reason == ErrorReason.PluginNotFound)
                {
                    // unloaded meanwhile: just as good
                }
            }

            try
            {
                return await UnloadOneAsync(plugin, "unloaded", writeAudit: true, whileIndependent: true);
            }
            catch (SandboxException e) when (e.Reason == ErrorReason.DependencyNotMet && cascade && round < MaxCascadeRounds)
            {
                // a dependent loaded after the cascade looked: unload it too
            }
        }
    }

    private const int MaxCascadeRounds = 3;

    private static SandboxException DependencyNotMet(ManagedPlugin plugin, IReadOnlyList<ManagedPlugin> dependents)
    {
        var names = string.Join(",", dependents.Select(d => d.Id));
        return new SandboxException(ErrorReason.DependencyNotMet,
            $"plugin {plugin.Id} cannot be unloaded while {names} depend{(dependents.Count == 1 ? "s" : "")} on it; unload them first or ask for a cascade",
            ErrorMetadata.For(plugin.Id, ("dependents", names)));
    }

    /// <summary>At shutdown everything goes: no dependency checks, each plugin on its own.</summary>
    public Task<CleanupReport> UnloadForShutdownAsync(ManagedPlugin plugin) => UnloadOneAsync(plugin, "unloaded at shutdown", writeAudit: true, whileIndependent: false);

    /// <summary>A load refused after its plugin became READY (its records could not be audited): the plugin goes again, at once.</summary>
    public async Task UndoLoadAsync(ManagedPlugin plugin)
    {
        try
        {
            await UnloadOneAsync(plugin, "its load could not be audited", writeAudit: true, whileIndependent: false);
        }
        catch (SandboxException e) when (e.Reason == ErrorReason.PluginNotFound)
        {
            // unloaded meanwhile: just as good
        }
    }

    /// <summary>
    /// The old half of an upgrade, after its successor took its place: its calls in flight finish, then it
    /// is unloaded like any plugin, but audited only by the upgrade's PLUGIN_UPGRADE and its CLEANUP_REPORT.
    /// </summary>
    public Task<CleanupReport> RetireAsync(ManagedPlugin old, ManagedPlugin successor) =>
        UnloadOneAsync(old, $"replaced by version {successor.Manifest.Version}", writeAudit: false, whileIndependent: false);

    /// <summary>Every plugin that depends on <paramref name="pluginId"/>, directly or not, each after those that depend on it.</summary>
    private List<ManagedPlugin> DependentsClosure(string pluginId)
    {
        var ordered = new List<ManagedPlugin>();
        var seen = new HashSet<string>(StringComparer.Ordinal) { pluginId };
        void Visit(string id)
        {
            foreach (var dependent in registry.DependentsOf(id))
            {
                if (!seen.Add(dependent.Id)) continue;
                Visit(dependent.Id);
                ordered.Add(dependent);
            }
        }

        Visit(pluginId);
        return ordered;
    }

    /// <param name="whileIndependent">Unload only if no live plugin depends on it, checked together with the
    /// transition (so no dependent can register in between); else DEPENDENCY_NOT_MET.</param>
    private async Task<CleanupReport> UnloadOneAsync(ManagedPlugin plugin, string message, bool writeAudit, bool whileIndependent)
    {
        var clock = Stopwatch.StartNew();
        var report = new CleanupReport { PluginId = plugin.Id };
        var beingUnloaded = new SandboxException(ErrorReason.PluginCrashed, $"plugin {plugin.Id} is being unloaded", ErrorMetadata.For(plugin.Id));
        WorkerHandle? worker = null;
        WorkerHandle? stoppedByOthers = null;
        var transition = new Transition(PluginState.Unloaded)
        {
            Message = message,
            WriteAudit = writeAudit,
            AuditDetails = json => json.WriteString("version", plugin.Manifest.Version.ToString()),
            // A worker already being stopped (terminated, crashed) is its terminator's to finish; the report waits for it.
            Apply = p =>
            {
                if (p.Current is not { } current) return;
                if (current.TryBeginStopping(beingUnloaded)) worker = current;
                else if (current.State == WorkerState.Stopping) stoppedByOthers = current; // not one stopped long ago: its pid may be another's now
            },
        };
        TransitionResult unloaded;
        if (whileIndependent)
        {
            unloaded = registry.TryTransitionIfIndependent(plugin, transition, out var dependents);
            if (dependents.Count > 0) throw DependencyNotMet(plugin, dependents);
        }
        else
        {
            unloaded = lifecycle.TryTransition(plugin, transition);
        }

        if (!unloaded.Applied) throw new SandboxException(ErrorReason.PluginNotFound, $"plugin {plugin.Id} is already unloaded", ErrorMetadata.For(plugin.Id));

        if (worker is not null) await StopWorkerAsync(worker, report);
        if (stoppedByOthers is { } ending)
        {
            await Task.WhenAny(ending.Stopped, Task.Delay(options.UnloadTimeout));
            VerifyGone(report, ending, [ending.Pid, ending.WorkerPid]);
        }

        if (plugin.Broker is { } broker) await CloseBrokerAsync(broker, report);
        repeats.CloseAll(plugin.Id); // the count of its repeated refusals is written before its cleanup report

        report.DurationUs = (ulong)clock.Elapsed.TotalMicroseconds;
        var reported = audit.Record(AuditEvents.CleanupReport, plugin.Id, json =>
        {
            json.WriteString("version", plugin.Manifest.Version.ToString());
            json.WriteBoolean("plugin_cleanup_called", report.PluginCleanupCalled);
            json.WriteNumber("plugin_cleanup_code", report.PluginCleanupCode);
            json.WriteStartArray("issues");
            foreach (var issue in report.Issues) json.WriteStringValue($"{issue.Kind}: {issue.Detail}");
            json.WriteEndArray();
        });
        if (!unloaded.Audited || !reported) report.Issues.Add(Issue(CleanupIssueKind.AuditLogFailed, "the unload could not be written to the audit log"));

        logger.LogInformation("unloaded {PluginId} {Version} ({Message}): {Issues} cleanup issue(s)", plugin.Id, plugin.Manifest.Version, message, report.Issues.Count);
        return report;
    }

    private async Task StopWorkerAsync(WorkerHandle worker, CleanupReport report)
    {
        await worker.NetworkLifetime.CancelAsync(); // network requests end now, so the call in flight can finish
        worker.Calls.Complete();
        await Task.WhenAny(worker.Calls.Loop, Task.Delay(options.UnloadTimeout)); // let the call in flight finish
        try
        {
            var cleanup = await worker.Connection.CleanupAsync(new WorkerV1.CleanupRequest { TimeoutMs = (ulong)options.UnloadTimeoutMs },
                options.UnloadTimeout + options.CallGrace);
            report.PluginCleanupCalled = cleanup.Called;
            report.PluginCleanupCode = cleanup.Code;
            if (cleanup.Fault is { } fault) report.Issues.Add(Issue(CleanupIssueKind.ResourceLeak, $"plugin_cleanup failed: {fault.Reason}: {fault.Message}"));
            else if (cleanup.Called && cleanup.Code != 0) report.Issues.Add(Issue(CleanupIssueKind.ResourceLeak, $"plugin_cleanup returned {cleanup.Code}"));
        }
        catch (Exception e) when (e is WorkerConnectionException or TimeoutException)
        {
            report.Issues.Add(Issue(CleanupIssueKind.ResourceLeak, $"plugin_cleanup could not run: {e.Message}"));
        }

        var tree = await stopper.StopAsync(worker, graceful: true);
        VerifyGone(report, worker, tree);
    }

    /// <summary>After the worker was stopped: process tree gone, socket gone, scratch files gone.</summary>
    private static void VerifyGone(CleanupReport report, WorkerHandle worker, List<int> tree)
    {
        foreach (var pid in tree.Where(ProcessTree.IsAlive))
            report.Issues.Add(Issue(pid == worker.Pid ? CleanupIssueKind.MemoryNotFreed : CleanupIssueKind.ResourceLeak, $"process {pid} is still alive"));
        if (File.Exists(worker.SocketPath)) report.Issues.Add(Issue(CleanupIssueKind.ResourceLeak, $"socket {worker.SocketPath} remains"));
        if (Directory.Exists(worker.RunDirectory)) report.Issues.Add(Issue(CleanupIssueKind.ResourceLeak, $"scratch directory {worker.RunDirectory} remains"));
    }

    private static async Task CloseBrokerAsync(NetworkBroker broker, CleanupReport report)
    {
        var waited = Stopwatch.StartNew();
        while (Volatile.Read(ref broker.InFlight) > 0 && waited.Elapsed < NetworkDrainTimeout) await Task.Delay(10);
        if (Volatile.Read(ref broker.InFlight) > 0)
            report.Issues.Add(Issue(CleanupIssueKind.NetworkConnectionOpen, $"{broker.InFlight} network request(s) could not be closed"));
        broker.Dispose();
    }

    private static CleanupIssue Issue(CleanupIssueKind kind, string detail) => new() { Kind = kind, Detail = detail };
}
