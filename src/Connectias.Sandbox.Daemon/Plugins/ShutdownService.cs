using Connectias.Sandbox.Daemon.Hosting;
using Connectias.Sandbox.Daemon.Lifecycle;

namespace Connectias.Sandbox.Daemon.Plugins;

/// <summary>
/// SIGTERM/SIGINT: no more loads, every plugin unloaded in parallel (each with its cleanup report and audit
/// records), then the daemon's remaining background work awaited, so nothing is cut off mid-way.
/// </summary>
internal sealed class ShutdownService(PluginRegistry registry, PluginUnloader unloader, BackgroundTasks tasks, ILogger<ShutdownService> logger) : IHostedService
{
    private static readonly TimeSpan BackgroundDrainTimeout = TimeSpan.FromSeconds(10);

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        tasks.BeginStopping();
        var active = registry.Close();
        logger.LogInformation("shutting down: unloading {Count} plugin(s)", active.Count);
        await Task.WhenAll(active.Select(async plugin =>
        {
            try
            {
                await unloader.UnloadForShutdownAsync(plugin);
            }
            catch (Exception e)
            {
                logger.LogError(e, "unloading {PluginId} at shutdown failed", plugin.Id);
            }
        }));
        await tasks.WaitAllAsync(BackgroundDrainTimeout);
    }
}
