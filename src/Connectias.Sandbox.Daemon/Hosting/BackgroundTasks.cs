using System.Collections.Concurrent;

namespace Connectias.Sandbox.Daemon.Hosting;

/// <summary>
/// The daemon's background work that is not a hosted service (a worker's log relay, a scheduled restart,
/// a broker request): started here, so nothing runs untracked, a failure is logged instead of lost, and
/// shutdown waits for all of it.
/// </summary>
internal sealed class BackgroundTasks(ILogger<BackgroundTasks> logger)
{
    private readonly ConcurrentDictionary<long, (string Name, Task Task)> _running = new();
    private readonly CancellationTokenSource _stopping = new();
    private long _next;

    public int Count => _running.Count;

    /// <summary>Cancelled when the daemon begins to shut down: work that waits (a restart's back-off) gives up.</summary>
    public CancellationToken Stopping => _stopping.Token;

    public void BeginStopping() => _stopping.Cancel();

    /// <summary>Runs <paramref name="work"/> on the thread pool and tracks it until it ends.</summary>
    public void Run(string name, Func<Task> work) => Start(name, work);

    /// <summary>As <see cref="Run"/>, for a caller that also waits for the work itself; the task never faults.</summary>
    public Task Start(string name, Func<Task> work)
    {
        var id = Interlocked.Increment(ref _next);
        var task = Task.Run(async () =>
        {
            try
            {
                await work();
            }
            catch (OperationCanceledException)
            {
                // cancelled because what it served ended
            }
            catch (Exception e)
            {
                logger.LogError(e, "background task {Name} failed", name);
            }
            finally
            {
                _running.TryRemove(id, out _);
            }
        });
        _running[id] = (name, task);
        if (task.IsCompleted) _running.TryRemove(id, out _);
        return task;
    }

    /// <summary>Waits for every tracked task, at most <paramref name="timeout"/>; names those still running after it.</summary>
    public async Task WaitAllAsync(TimeSpan timeout)
    {
        var pending = _running.Values.ToList();
        if (pending.Count == 0) return;
        var all = Task.WhenAll(pending.Select(p => p.Task));
        if (await Task.WhenAny(all, Task.Delay(timeout)) != all)
        {
            var names = string.Join(", ", _running.Values.Select(p => p.Name).Distinct().Take(10));
            logger.LogWarning("{Count} background task(s) still running at shutdown: {Names}", _running.Count, names);
        }
    }
}
