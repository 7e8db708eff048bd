using System.Globalization;
using Connectias.Sandbox.Daemon.Hosting;
using Connectias.Sandbox.Daemon.Lifecycle;
using Connectias.Sandbox.Daemon.Workers;
using Connectias.Sandbox.V1;

namespace Connectias.Sandbox.Daemon.Supervision;

/// <summary>
/// Samples every worker's RSS and CPU from /proc each <c>MonitorIntervalMs</c>, serving ones and loading ones alike
/// (a compile can outgrow a worker too), and ends those over their process-level cap (the plugin's memory_bytes plus
/// <c>WorkerRssAllowanceBytes</c>) all at once: each on its own task, so one violator's audit record and kill never
/// wait behind another's. The kernel's RLIMIT_DATA (set by the worker from the same cap) stops most of this before
/// the sample could see it; the monitor is what also counts memory the worker did not allocate itself.
/// </summary>
internal sealed class ResourceMonitor(DaemonOptions options, PluginRegistry registry, PluginSupervisor supervisor) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(options.MonitorIntervalMs));
        while (await timer.WaitForNextTickAsync(stoppingToken)) await SampleAsync();
    }

    private Task SampleAsync()
    {
        var violations = new List<Task>();
        foreach (var plugin in registry.InState(PluginState.Ready))
        {
            if (plugin.Current is not { State: WorkerState.Serving } worker) continue;
            var tree = ProcessTree.WithDescendants(worker.Pid);
            var rss = ProcessTree.RssBytes(tree);
            Interlocked.Exchange(ref plugin.WorkerRssBytes, rss);
            plugin.WorkerCpuSeconds = ProcessTree.CpuSeconds(tree);
            if (OverCap(plugin, rss, ErrorReason.MemoryLimitExceeded, "uses") is { } cause)
                violations.Add(Task.Run(() => supervisor.TerminateAsync(plugin, worker, cause, crashed: false)));
        }

        foreach (var (worker, plugin) in supervisor.LoadingWorkers())
        {
            if (worker.State is WorkerState.Stopping or WorkerState.Stopped) continue;
            var rss = ProcessTree.RssBytes(ProcessTree.WithDescendants(worker.Pid));
            if (OverCap(plugin, rss, ErrorReason.ResourceExhausted, "used while loading") is { } cause)
                violations.Add(Task.Run(() => supervisor.StopLoadingAsync(plugin, worker, cause)));
        }

        return Task.WhenAll(violations);
    }

    private SandboxException? OverCap(ManagedPlugin plugin, long rss, ErrorReason reason, string verb)
    {
        var cap = options.WorkerMemoryCapBytes(plugin.Limits.MemoryBytes);
        if (rss <= cap) return null;
        return new SandboxException(reason, $"the worker of plugin {plugin.Id} {verb} {rss} bytes of resident memory; its cap is {cap}",
            ErrorMetadata.For(plugin.Id, ("limit", cap.ToString(CultureInfo.InvariantCulture)), ("used", rss.ToString(CultureInfo.InvariantCulture))));
    }
}
