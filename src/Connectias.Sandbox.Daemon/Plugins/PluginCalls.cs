using System.Globalization;
using Connectias.Sandbox.Daemon.Calls;
using Connectias.Sandbox.Daemon.Lifecycle;
using Connectias.Sandbox.Daemon.Workers;
using Connectias.Sandbox.V1;

namespace Connectias.Sandbox.Daemon.Plugins;

/// <summary>
/// Execute: refuses at once what cannot run (unknown or unloaded plugin, a plugin not ready, an undeclared
/// command, a full queue), otherwise queues the call on the plugin's worker and waits for its outcome.
/// </summary>
internal sealed class PluginCalls(PluginRegistry registry)
{
    public async Task<ExecuteResponse> ExecuteAsync(ExecuteRequest request, DateTime? deadline, CancellationToken cancellation)
    {
        var plugin = registry.Find(request.PluginId);
        WorkerHandle worker;
        lock (plugin.Sync)
        {
            if (plugin.State == PluginState.Unloaded)
                throw new SandboxException(ErrorReason.PluginNotFound, $"plugin {plugin.Id} was unloaded", ErrorMetadata.For(plugin.Id));
            if (plugin.State != PluginState.Ready || plugin.Current is not { State: WorkerState.Serving } current) throw NotReady(plugin);
            worker = current;
        }

        if (plugin.Manifest.Commands is { } declared && declared.All(c => c.Name != request.Command))
        {
            Interlocked.Increment(ref plugin.Failures);
            throw new SandboxException(ErrorReason.InvalidCommand,
                $"plugin {plugin.Id} declares no command '{request.Command}'; it declares: {string.Join(", ", declared.Select(c => c.Name))}", ErrorMetadata.For(plugin.Id));
        }

        var job = new CallJob(request.Command, request.Args.ToByteArray(), deadline, cancellation);
        if (!worker.Calls.TryEnqueue(job))
        {
            if (worker.State != WorkerState.Serving) throw NotReady(plugin); // the worker began to stop since the check above
            Interlocked.Increment(ref plugin.Failures);
            throw new SandboxException(ErrorReason.QueueFull, $"plugin {plugin.Id} already has {worker.Calls.Limit} calls waiting",
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
