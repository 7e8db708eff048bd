using System.Diagnostics;
using System.Globalization;
using Connectias.Sandbox.Worker.V1;
using Connectias.Sandbox.WorkerProtocol;
using Google.Protobuf;

namespace Connectias.Sandbox.Daemon.Calls;

/// <summary>
/// The call path to one worker: calls are forwarded over its connection as they come, up to <c>depth</c> at once,
/// without waiting for the previous reply; the worker runs them one at a time in arrival order and answers in
/// that order. The worker enforces each call's deadline itself; a watchdog on the oldest unanswered call (whose
/// turn began when the reply before it came) declares the worker hung <c>CallGraceMs</c> after that deadline.
/// A caller that cancels makes the worker skip its call if it has not started. Knows nothing of plugins' state:
/// each outcome says what must happen.
/// </summary>
internal sealed class CallPipeline : IDisposable
{
    private readonly WorkerConnection _connection;
    private readonly string _pluginId;
    private readonly ResourceLimits _limits;
    private readonly TimeSpan _callGrace;
    private readonly Func<SandboxException?> _endedBy;
    private readonly SemaphoreSlim _room;
    private readonly int _depth;
    private readonly Lock _sync = new();
    private readonly Queue<InFlight> _inFlight = new();
    private readonly Timer _watchdog;
    private SandboxException? _brokenBy; // the outcome that ends the worker: every later one is "stopped before it ran"
    private Task _lastDecided = Task.CompletedTask;
    private bool _disposed;

    public CallPipeline(WorkerConnection connection, string pluginId, ResourceLimits limits, TimeSpan callGrace, int depth, Func<SandboxException?> endedBy)
    {
        _connection = connection;
        _pluginId = pluginId;
        _limits = limits;
        _callGrace = callGrace;
        _endedBy = endedBy;
        _depth = depth;
        _room = new SemaphoreSlim(depth, depth);
        _watchdog = new Timer(_ => OnWatchdog(), null, Timeout.Infinite, Timeout.Infinite);
    }

    /// <summary>Called with a call's job when its turn in the worker begins (it becomes the oldest unanswered one).</summary>
    public Action<CallJob>? TurnBegins { get; init; }

    private sealed record InFlight(ulong Id, CallJob Job, TimeSpan Window, Task PreviousDecided)
    {
        public TaskCompletionSource Hung { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        /// <summary>Its outcome is decided; the next call's waits for it, so outcomes are decided in call order.</summary>
        public TaskCompletionSource Decided { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        /// <summary>When its turn in the worker began (Stopwatch ticks); set under the pipeline's lock.</summary>
        public long TurnStarted { get; set; }
    }

    /// <summary>
    /// Waits for room in the pipeline, sends the call, and returns (once sent) the task of its outcome. A call whose
    /// deadline passed while it waited is not sent.
    /// </summary>
    public async Task<Task<CallOutcome>> SendAsync(CallJob job, CancellationToken stop)
    {
        await _room.WaitAsync(stop);
        var remaining = job.Deadline is { } clientDeadline ? clientDeadline - DateTime.UtcNow : (TimeSpan?)null;
        if (remaining <= TimeSpan.Zero)
        {
            _room.Release();
            return Task.FromResult(DeadlinePassed());
        }

        var limit = TimeSpan.FromMilliseconds(_limits.TimeoutMs);
        var window = remaining is { } r && r < limit ? r : limit;
        var request = new WorkerRequest
        {
            Execute = new ExecuteRequest
            {
                Command = job.Command,
                Args = UnsafeByteOperations.UnsafeWrap(job.Args),
                DeadlineUnixMs = job.Deadline is { } deadline ? (ulong)new DateTimeOffset(deadline).ToUnixTimeMilliseconds() : 0,
            },
        };
        InFlight call;
        Task<WorkerReply> reply;
        lock (_sync)
        {
            (var id, reply) = _connection.Send(request);
            call = new InFlight(id, job, window, _lastDecided);
            _lastDecided = call.Decided.Task;
            _inFlight.Enqueue(call);
            if (_inFlight.Count == 1) BeginTurn(call);
        }

        return CompleteAsync(call, reply);
    }

    /// <summary>Completes once every call sent has its outcome.</summary>
    public async Task DrainAsync(TimeSpan timeout)
    {
        var taken = 0;
        using var deadline = new CancellationTokenSource(timeout);
        try
        {
            for (; taken < _depth; taken++) await _room.WaitAsync(deadline.Token);
        }
        catch (OperationCanceledException)
        {
            // what is still in flight is ended with the worker
        }
        finally
        {
            if (taken > 0) _room.Release(taken);
        }
    }

    private async Task<CallOutcome> CompleteAsync(InFlight call, Task<WorkerReply> reply)
    {
        // A caller that gives up asks the worker to skip the call; one that already started runs to its end.
        using var cancel = call.Job.Cancellation.Register(() => _connection.Post(new WorkerRequest { Cancel = new CancelRequest { TargetId = call.Id } }));
        try
        {
            var outcome = await Task.WhenAny(reply, call.Hung.Task) != reply ? Hung(call) : Map((await reply).Execute);
            await call.PreviousDecided; // replies come in order, but their continuations may not run in order
            lock (_sync)
            {
                // After a call that ends the worker (a fatal fault, a hang), the worker may still answer the calls
                // behind it ("terminated by an earlier ..."), or the kill fails them: they never ran, and only the
                // first decides why the worker ends.
                if (_brokenBy is { } cause) return new CallOutcome(null, CallQueue.StoppedBeforeRunning(cause), Ran: false);
                if (outcome.Terminate) _brokenBy = outcome.Error;
            }

            return outcome;
        }
        catch (WorkerConnectionException e)
        {
            await call.PreviousDecided;
            if (_endedBy() is { } cause)
            {
                // The daemon ended this worker on purpose: the call whose turn it was learns why; those behind it never ran.
                bool running;
                lock (_sync) running = _brokenBy is null && _inFlight.TryPeek(out var head) && head == call;
                return running ? new CallOutcome(null, cause, Ran: true) : new CallOutcome(null, CallQueue.StoppedBeforeRunning(cause), Ran: false);
            }

            if (e.ProtocolViolation)
            {
                return new CallOutcome(null, new SandboxException(ErrorReason.SecurityViolation, $"the worker of plugin {_pluginId} broke the worker protocol: {e.Message}",
                    ErrorMetadata.For(_pluginId)), Ran: true, Terminate: true);
            }

            return new CallOutcome(null, new SandboxException(ErrorReason.PluginCrashed, $"the worker of plugin {_pluginId} died during the call ({e.Message})",
                ErrorMetadata.For(_pluginId)), Ran: true, Terminate: true, Crashed: true, ReportWhyEnded: true);
        }
        finally
        {
            call.Decided.TrySetResult();
            lock (_sync)
            {
                if (_inFlight.TryPeek(out var head) && head == call)
                {
                    _inFlight.Dequeue();
                    if (_inFlight.TryPeek(out var next)) BeginTurn(next);
                    else if (!_disposed) _watchdog.Change(Timeout.Infinite, Timeout.Infinite);
                }
            }

            _room.Release();
        }
    }

    private CallOutcome Map(ExecuteResponse response)
    {
        if (response.Skipped) return response.DeadlinePassed ? DeadlinePassed() : new CallOutcome(null, null, Ran: false, Cancelled: true);
        var memory = (long)response.MemoryBytes;
        if (response.Fault is { } fault)
        {
            var error = WorkerFaults.ToError(fault, _pluginId);
            var fuel = error.Metadata.TryGetValue("fuel_consumed", out var fuelText) && long.TryParse(fuelText, CultureInfo.InvariantCulture, out var used) ? used : 0;
            return new CallOutcome(null, error, Ran: true, memory, fuel, Terminate: fault.Fatal, Crashed: error.Reason == ErrorReason.PluginCrashed, WorkerFault: true);
        }

        return new CallOutcome(new V1.ExecuteResponse
        {
            Output = response.Output,
            Stats = new V1.ExecutionStats { FuelConsumed = response.FuelConsumed, DurationUs = response.DurationUs, MemoryBytes = response.MemoryBytes },
        }, null, Ran: true, memory, (long)response.FuelConsumed);
    }

    private CallOutcome DeadlinePassed() =>
        new(null, new SandboxException(ErrorReason.Timeout, $"the call's deadline passed while it waited for plugin {_pluginId}", ErrorMetadata.For(_pluginId)), Ran: false);

    private CallOutcome Hung(InFlight call) => new(null, new SandboxException(ErrorReason.Timeout,
        $"plugin {_pluginId} did not answer within {call.Window.TotalMilliseconds:F0} ms; its worker was killed",
        ErrorMetadata.For(_pluginId, ("limit", ((long)call.Window.TotalMilliseconds).ToString(CultureInfo.InvariantCulture)))), Ran: true, Terminate: true);

    /// <summary>Under the lock: <paramref name="call"/> is now the oldest unanswered call, so its turn in the worker begins.</summary>
    private void BeginTurn(InFlight call)
    {
        call.TurnStarted = Stopwatch.GetTimestamp();
        if (!_disposed) _watchdog.Change(call.Window + _callGrace, Timeout.InfiniteTimeSpan);
        TurnBegins?.Invoke(call.Job);
    }

    private void OnWatchdog()
    {
        lock (_sync)
        {
            if (_disposed || !_inFlight.TryPeek(out var head)) return;
            // The timer may have been armed for a call answered just now: only the current head's own time counts.
            var left = head.Window + _callGrace - Stopwatch.GetElapsedTime(head.TurnStarted);
            if (left > TimeSpan.Zero) _watchdog.Change(left, Timeout.InfiniteTimeSpan);
            else head.Hung.TrySetResult();
        }
    }

    public void Dispose()
    {
        lock (_sync)
        {
            _disposed = true;
            _watchdog.Dispose();
        }
    }
}
