using System.Diagnostics;
using System.Globalization;
using Connectias.Sandbox.Daemon.Calls;
using Connectias.Sandbox.Daemon.Events;
using Connectias.Sandbox.Daemon.Lifecycle;
using Connectias.Sandbox.Daemon.Telemetry;
using Connectias.Sandbox.Daemon.Workers;
using Connectias.Sandbox.V1;

namespace Connectias.Sandbox.Daemon.Plugins;

/// <summary>
/// Execute: refuses at once what cannot run (unknown or unloaded plugin, a plugin not ready, an undeclared
/// command, an audit log that cannot be written under <c>audit_failure: refuse</c>, a full queue), otherwise queues the call on the plugin's worker and waits for its outcome. Every call
/// to a registered plugin is counted, timed and traced here, in the one place every end of a call passes through
/// (a refusal at admission, the worker's answer, a queued call failed when its worker was ended).
/// </summary>
internal sealed class PluginCalls(PluginRegistry registry, AuditTrail audit, DaemonMetrics metrics)
{
    public async Task<ExecuteResponse> ExecuteAsync(ExecuteRequest request, DateTime? deadline, CancellationToken cancellation)
    {
        // An unknown id is refused before it is counted or traced: it would be a series for any name a caller makes up.
        var plugin = registry.Find(request.PluginId);
        using var span = DaemonTracing.StartExecute(plugin.Id, request.Command);
        var started = Stopwatch.GetTimestamp();
        try
        {
            var response = await AdmitAndWaitAsync(plugin, request, deadline, span, cancellation);
            metrics.CallEnded(plugin.Id, Stopwatch.GetElapsedTime(started), error: null);
            return response;
        }
        catch (Exception e)
        {
            metrics.CallEnded(plugin.Id, Stopwatch.GetElapsedTime(started), e);
            DaemonTracing.Failed(span, e);
            throw;
        }
    }

    private async Task<ExecuteResponse> AdmitAndWaitAsync(ManagedPlugin plugin, ExecuteRequest request, DateTime? deadline, Activity? span,
        CancellationToken cancellation)
    {
        WorkerHandle? worker;
        PluginState state;
        lock (plugin.Sync)
        {
            state = plugin.State;
            worker = state == PluginState.Ready && plugin.Current is { State: WorkerState.Serving } current ? current : null;
        }

        if (worker is null)
        {
            // Found just before an upgrade replaced (and retired) it: the call goes to the version now in its place.
            // Asked only on this refusal path, so the ordinary call takes the registry's lock once, in Find.
            if (!registry.IsCurrent(plugin)) return await AdmitAndWaitAsync(registry.Find(plugin.Id), request, deadline, span, cancellation);
            if (state == PluginState.Unloaded)
                throw new SandboxException(ErrorReason.PluginNotFound, $"plugin {plugin.Id} was unloaded", ErrorMetadata.For(plugin.Id));
            throw NotReady(plugin);
        }

        if (plugin.Manifest.Commands is { } declared && declared.All(c => c.Name != request.Command))
        {
            Interlocked.Increment(ref plugin.Failures);
            throw new SandboxException(ErrorReason.InvalidCommand,
                $"plugin {plugin.Id} declares no command '{request.Command}'; it declares: {string.Join(", ", declared.Select(c => c.Name))}", ErrorMetadata.For(plugin.Id));
        }

        audit.EnsureWritable(plugin.Id);
        var job = new CallJob(request.Command, request.Args.ToByteArray(), deadline, cancellation, span);
        if (!worker.Calls.TryEnqueue(job, out var full))
        {
            // Replaced by an upgrade since the check above (its queue closed to new calls): go to the new version.
            if (!registry.IsCurrent(plugin)) return await AdmitAndWaitAsync(registry.Find(plugin.Id), request, deadline, span, cancellation);
            if (worker.State != WorkerState.Serving) throw NotReady(plugin); // the worker began to stop since the check above
            Interlocked.Increment(ref plugin.Failures);
            throw new SandboxException(ErrorReason.QueueFull, $"plugin {plugin.Id} cannot take another call: {full}",
                ErrorMetadata.For(plugin.Id, ("limit", worker.Calls.Limit.ToString(CultureInfo.InvariantCulture))));
        }

        return await job.Result.Task.WaitAsync(cancellation);
    }

    private static SandboxException NotReady(ManagedPlugin plugin)
    {
        string state, reason;
        lock (plugin.Sync)
        {
            state = plugin.State.ToString();
            reason = plugin.StateReason.Length > 0 ? $": {plugin.StateReason}" : plugin.Current?.EndedBy is { } cause ? $": its worker is being stopped ({cause.Reason.WireName()})" : "";
        }

        return new SandboxException(ErrorReason.PluginCrashed, $"plugin {plugin.Id} is not ready (state {state}{reason})", ErrorMetadata.For(plugin.Id));
    }
}
