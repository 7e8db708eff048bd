using System.Threading.Channels;
using Connectias.Sandbox.Daemon.Hosting;

namespace Connectias.Sandbox.Daemon.Calls;

/// <summary>
/// One worker's calls in arrival order (SPEC §2): a bounded FIFO (more waiting than the limit is QUEUE_FULL)
/// and one loop that hands them to the worker one at a time. A call cancelled while it waits never reaches
/// the plugin.
/// </summary>
internal sealed class CallQueue(int limit)
{
    private readonly Channel<CallJob> _channel = Channel.CreateBounded<CallJob>(
        new BoundedChannelOptions(limit) { SingleReader = true, FullMode = BoundedChannelFullMode.Wait });

    public int Limit { get; } = limit;

    /// <summary>Calls waiting now, the running one not included (a bounded channel keeps the count).</summary>
    public int Waiting => _channel.Reader.Count;

    /// <summary>The loop's task once <see cref="Start"/> ran; it ends when the queue is completed or the worker stops.</summary>
    public Task Loop { get; private set; } = Task.CompletedTask;

    public bool TryEnqueue(CallJob job) => _channel.Writer.TryWrite(job);

    /// <summary>Starts the loop as tracked background work, running each call with <paramref name="runOne"/> until <paramref name="stop"/>.</summary>
    public void Start(string name, Func<CallJob, Task> runOne, CancellationToken stop, BackgroundTasks tasks) => Loop = tasks.Start(name, async () =>
    {
        try
        {
            await foreach (var job in _channel.Reader.ReadAllAsync(stop))
            {
                if (job.Cancellation.IsCancellationRequested)
                {
                    job.Result.TrySetCanceled(job.Cancellation);
                    continue;
                }

                try
                {
                    await runOne(job);
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    // Never leave a caller waiting: whatever went wrong is its answer.
                    job.Result.TrySetException(e as SandboxException ?? new SandboxException(ErrorReason.PluginCrashed, $"the call failed in the daemon: {e.Message}", null, e));
                }
            }
        }
        catch (OperationCanceledException)
        {
            // the worker stopped; the calls left are failed by whoever stopped it
        }
    });

    /// <summary>No more calls are accepted; the loop ends after the ones already queued.</summary>
    public void Complete() => _channel.Writer.TryComplete();

    /// <summary>Fails every call still waiting with <paramref name="error"/>.</summary>
    public void FailPending(SandboxException error)
    {
        while (_channel.Reader.TryRead(out var queued)) queued.Result.TrySetException(error);
    }
}
