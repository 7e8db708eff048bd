using System.Globalization;
using Connectias.Sandbox.Daemon.Hosting;
using Connectias.Sandbox.Daemon.Lifecycle;
using Connectias.Sandbox.Daemon.Workers;
using Connectias.Sandbox.V1;

namespace Connectias.Sandbox.Daemon.Supervision;

/// <summary>
/// Samples every serving worker's RSS and CPU from /proc each <c>MonitorIntervalMs</c>, and terminates those
/// over their process-level cap (the plugin's memory_bytes plus <c>WorkerRssAllowanceBytes</c>) all at once.
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
            var cap = plugin.Limits.MemoryBytes + options.WorkerRssAllowanceBytes;
            if (rss <= cap) continue;
            violations.Add(supervisor.TerminateAsync(plugin, worker, new SandboxException(ErrorReason.MemoryLimitExceeded,
                $"the worker of plugin {plugin.Id} uses {rss} bytes of resident memory; its cap is {cap}",
                ErrorMetadata.For(plugin.Id, ("limit", cap.ToString(CultureInfo.InvariantCulture)), ("used", rss.ToString(CultureInfo.InvariantCulture)))), crashed: false));
        }

        return Task.WhenAll(violations);
    }
}
