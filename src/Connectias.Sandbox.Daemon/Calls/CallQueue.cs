using System.Threading.Channels;
using Connectias.Sandbox.Daemon.Hosting;

namespace Connectias.Sandbox.Daemon.Calls;

/// <summary>
/// One worker's calls in arrival order (SPEC §2): a FIFO of at most <c>limit</c> calls beyond the one running, whose
/// arguments hold at most <c>bytesLimit</c> bytes here and <see cref="QueuedBytes"/> across all plugins (more is
/// QUEUE_FULL; calls forwarded to the worker but not yet answered count too), and one loop that forwards them in
/// order. A call cancelled while it waits here never reaches the worker.
/// </summary>
internal sealed class CallQueue(int limit, long bytesLimit = long.MaxValue, QueuedBytes? total = null)
{
    private readonly Channel<CallJob> _channel = Channel.CreateUnbounded<CallJob>(new UnboundedChannelOptions { SingleReader = true });
    private int _outstanding; // enqueued and not yet answered
    private int _queuedHere;  // of those, still in this queue (the single-reader channel keeps no count)
    private long _bytes;      // their arguments' bytes

    public int Limit { get; } = limit;

    /// <summary>Calls waiting now, here or in the worker, the running one not included.</summary>
    public int Waiting
    {
        get
        {
            var queuedHere = Volatile.Read(ref _queuedHere);
            var forwarded = Volatile.Read(ref _outstanding) - queuedHere; // in the worker's pipeline, the running one among them
            return queuedHere + Math.Max(0, forwarded - 1);
        }
    }

    /// <summary>The loop's task once <see cref="Start"/> ran; it ends when the queue is completed (and what it forwarded answered) or the worker stops.</summary>
    public Task Loop { get; private set; } = Task.CompletedTask;

    public long BytesLimit { get; } = bytesLimit;

    /// <summary>Queues the call, or says which limit refuses it (null with false: the queue is closed).</summary>
    public bool TryEnqueue(CallJob job, out string? full)
    {
        full = null;
        if (Interlocked.Increment(ref _outstanding) > Limit + 1)
        {
            Interlocked.Decrement(ref _outstanding);
            full = $"{Limit} calls are waiting already";
            return false;
        }

        var bytes = job.Args.LongLength;
        if (Interlocked.Add(ref _bytes, bytes) > BytesLimit)
        {
            Undo(bytes, releaseTotal: false);
            full = $"the calls waiting hold {BytesLimit} bytes of arguments, the most one plugin may (Sandbox:QueueBytesPerPlugin)";
            return false;
        }

        if (total is not null && !total.TryReserve(bytes))
        {
            Undo(bytes, releaseTotal: false);
            full = $"calls waiting for all plugins hold {total.Limit} bytes of arguments, the most the daemon takes (Sandbox:QueueBytesTotal)";
            return false;
        }

        Interlocked.Increment(ref _queuedHere);
        if (!_channel.Writer.TryWrite(job))
        {
            Interlocked.Decrement(ref _queuedHere);
            Undo(bytes, releaseTotal: true);
            return false;
        }

        job.Result.Task.ContinueWith(_ => Settle(job), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        return true;
    }

    private void Undo(long bytes, bool releaseTotal)
    {
        Interlocked.Add(ref _bytes, -bytes);
        if (releaseTotal) total?.Release(bytes);
        Interlocked.Decrement(ref _outstanding);
    }

    /// <summary>
    /// Starts the loop as tracked background work: each call goes to <paramref name="forward"/>, which returns once
    /// it is sent; when the queue is completed the loop waits for <paramref name="drain"/>, until <paramref name="stop"/>.
    /// </summary>
    public void Start(string name, Func<CallJob, Task> forward, Func<Task> drain, CancellationToken stop, BackgroundTasks tasks) => Loop = tasks.Start(name, async () =>
    {
        try
        {
            await foreach (var job in _channel.Reader.ReadAllAsync(stop))
            {
                Interlocked.Decrement(ref _queuedHere);
                if (job.Cancellation.IsCancellationRequested)
                {
                    job.Result.TrySetCanceled(job.Cancellation);
                    continue;
                }

                try
                {
                    await forward(job);
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    // Never leave a caller waiting: whatever went wrong is its answer.
                    job.Result.TrySetException(e as SandboxException ?? new SandboxException(ErrorReason.PluginCrashed, $"the call failed in the daemon: {e.Message}", null, e));
                }
            }

            await drain();
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
        while (_channel.Reader.TryRead(out var queued))
        {
            Interlocked.Decrement(ref _queuedHere);
            queued.Result.TrySetException(error);
            Settle(queued); // now, not when the result's continuation gets its turn
        }
    }

    /// <summary>What a call that never ran is told when its worker was ended (<paramref name="cause"/> says why, unless it was an unload).</summary>
    public static SandboxException StoppedBeforeRunning(SandboxException? cause) => new(ErrorReason.PluginCrashed,
        $"the plugin was stopped before this call ran{(cause is not null ? $" ({cause.Reason.WireName()})" : "")}", cause?.Metadata);

    /// <summary>A call is answered: it no longer counts against the limit (once, whoever notices first).</summary>
    private void Settle(CallJob job)
    {
        if (Interlocked.Exchange(ref job.Settled, 1) != 0) return;
        Interlocked.Decrement(ref _outstanding);
        Interlocked.Add(ref _bytes, -job.Args.LongLength);
        total?.Release(job.Args.LongLength);
    }
}
