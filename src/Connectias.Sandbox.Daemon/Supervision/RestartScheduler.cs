using Connectias.Sandbox.Daemon.Hosting;
using Connectias.Sandbox.Daemon.Lifecycle;
using Connectias.Sandbox.Daemon.Policy;
using Connectias.Sandbox.Daemon.Telemetry;
using Connectias.Sandbox.Daemon.Workers;
using Connectias.Sandbox.V1;

namespace Connectias.Sandbox.Daemon.Supervision;

/// <summary>
/// <c>restart: on-failure</c> (SPEC §5): a terminated or crashed plugin starts again after a back-off of
/// <c>RestartBackoffMs</c>, doubling with each restart within a minute, at most <c>RestartsPerMinute</c> times a
/// minute; past that it stays down and its module is released.
/// </summary>
internal sealed class RestartScheduler(DaemonOptions options, BackgroundTasks tasks, DaemonMetrics metrics, ILogger<RestartScheduler> logger)
{
    private static readonly TimeSpan Window = TimeSpan.FromMinutes(1);

    /// <summary>The wait before the next restart of a plugin that restarted <paramref name="recentRestarts"/> times within a minute.</summary>
    public TimeSpan Backoff(int recentRestarts) => TimeSpan.FromMilliseconds(options.RestartBackoffMs * Math.Pow(2, recentRestarts));

    /// <summary>Schedules <paramref name="restart"/> when the policy and the budget allow a restart after <paramref name="ended"/>.</summary>
    public void MaybeSchedule(ManagedPlugin plugin, WorkerHandle ended, Func<Task> restart)
    {
        if (plugin.Grant.Restart != RestartPolicy.OnFailure || tasks.Stopping.IsCancellationRequested) return;
        TimeSpan delay;
        lock (plugin.Sync)
        {
            if (plugin.Current != ended || plugin.State is not (PluginState.Terminated or PluginState.Crashed)) return;
            var now = DateTime.UtcNow;
            while (plugin.RecentRestarts.Count > 0 && now - plugin.RecentRestarts.Peek() > Window) plugin.RecentRestarts.Dequeue();
            if (plugin.RecentRestarts.Count >= options.RestartsPerMinute)
            {
                logger.LogError("not restarting {PluginId}: it failed {Count} times within a minute", plugin.Id, plugin.RecentRestarts.Count);
                plugin.Module = null; // it stays down: nothing will load the module again
                metrics.Restart(plugin.Id, RestartOutcome.BudgetExhausted);
                return;
            }

            delay = Backoff(plugin.RecentRestarts.Count);
            plugin.RecentRestarts.Enqueue(now + delay);
        }

        tasks.Run($"restart of {plugin.Id}", async () =>
        {
            await Task.Delay(delay, tasks.Stopping);
            await restart();
        });
    }
}
