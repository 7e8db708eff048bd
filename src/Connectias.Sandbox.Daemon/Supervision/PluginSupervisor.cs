using System.Text.Json;
using Connectias.Sandbox.Audit;
using Connectias.Sandbox.Daemon.Calls;
using Connectias.Sandbox.Daemon.Events;
using Connectias.Sandbox.Daemon.Hosting;
using Connectias.Sandbox.Daemon.Lifecycle;
using Connectias.Sandbox.Daemon.Network;
using Connectias.Sandbox.Daemon.Telemetry;
using Connectias.Sandbox.Daemon.Workers;
using Connectias.Sandbox.V1;
using Connectias.Sandbox.WorkerProtocol;

namespace Connectias.Sandbox.Daemon.Supervision;

/// <summary>
/// Brings a plugin's worker up (launch, Load, READY, call loop, watches) and ends it when it breaks a rule,
/// crashes or hangs (terminate, audit, restart when the policy says so). The one place a worker's life is
/// decided; the mechanics live in Workers, Calls and Network, the states in Lifecycle.
/// </summary>
internal sealed class PluginSupervisor(
    DaemonOptions options,
    PluginLifecycle lifecycle,
    PluginRegistry registry,
    WorkerLauncher launcher,
    WorkerSource workers,
    WorkerLoader loader,
    WorkerStopper stopper,
    WorkerOutput output,
    RestartScheduler restarts,
    NetworkRefusalReporter refusals,
    AuditTrail audit,
    EventHub events,
    BackgroundTasks tasks,
    DaemonMetrics metrics,
    ILogger<PluginSupervisor> logger)
{
    // Workers between their start and READY (or failure), for the resource monitor: a compile can outgrow a worker too.
    private readonly System.Collections.Concurrent.ConcurrentDictionary<WorkerHandle, ManagedPlugin> _loading = new();

    public bool UsesBubblewrap => launcher.UseBubblewrap;

    /// <summary>The workers loading a plugin now (a restart's and an upgrade's included).</summary>
    public IReadOnlyList<(WorkerHandle Worker, ManagedPlugin Plugin)> LoadingWorkers() => _loading.Select(entry => (entry.Key, entry.Value)).ToList();

    /// <summary>
    /// Ends a worker that is still loading because of <paramref name="cause"/> (its RSS outgrew its cap): audited,
    /// killed; the load then fails with the cause.
    /// </summary>
    public async Task StopLoadingAsync(ManagedPlugin plugin, WorkerHandle worker, SandboxException cause)
    {
        if (!worker.TryBeginStoppingWhileLoading(cause))
        {
            // The load finished since the sample: the plugin is READY on this worker, and is ended as any serving one.
            if (worker.State == WorkerState.Serving && plugin.Current == worker)
            {
                await TerminateAsync(plugin, worker, new SandboxException(ErrorReason.MemoryLimitExceeded, cause.Message, cause.Metadata), crashed: false);
            }

            return;
        }

        logger.LogWarning("stopping the load of {PluginId}: {Reason}: {Message}", plugin.Id, cause.Reason.WireName(), cause.Message);
        audit.Record(AuditEvents.ResourceExhaustion, plugin.Id, json => AuditTrail.WriteCause(json, cause, worker.Pid));
        await stopper.StopAsync(worker, graceful: false);
    }

    /// <summary>
    /// Starts a worker for <paramref name="plugin"/>, loads it, and applies <paramref name="ready"/> (LOADING →
    /// READY, with its audit record) once the plugin is loaded. Throws the SPEC error when it cannot, with the
    /// worker stopped and its files removed; PLUGIN_NOT_FOUND when the plugin was unloaded meanwhile.
    /// </summary>
    public async Task StartAsync(ManagedPlugin plugin, Transition ready, CancellationToken cancellation)
    {
        var (worker, storageDirectory) = await workers.AcquireAsync(plugin.Id, plugin.Manifest.Permissions.Contains(Permission.Storage), cancellation);
        _loading[worker] = plugin;
        try
        {
            await LoadIntoAsync(plugin, worker, storageDirectory, ready, cancellation);
        }
        finally
        {
            _loading.TryRemove(worker, out _);
        }
    }

    private async Task LoadIntoAsync(ManagedPlugin plugin, WorkerHandle worker, string? storageDirectory, Transition ready, CancellationToken cancellation)
    {
        output.Follow(plugin.Id, worker, () => TerminateAsync(plugin, worker, new SandboxException(ErrorReason.SecurityViolation,
            $"the worker of plugin {plugin.Id} broke the worker protocol (unexpected output on stdout)", ErrorMetadata.For(plugin.Id)), crashed: false));
        // A worker that breaks the protocol on its connection is not trusted with another call; one that merely goes away is seen by its exit.
        _ = worker.Connection.Closed.ContinueWith(closed =>
        {
            if (closed.Result.ProtocolViolation)
            {
                tasks.Run($"protocol violation of {plugin.Id}'s worker", () => TerminateAsync(plugin, worker, WorkerExit.ProtocolBroken(plugin.Id, closed.Result), crashed: false));
            }
        }, TaskScheduler.Default);
        try
        {
            var networked = plugin.Manifest.Permissions.Contains(Permission.Network);
            if (networked)
            {
                plugin.Broker ??= new NetworkBroker(plugin.Id, plugin.Manifest.AllowedHosts, plugin.Grant, plugin.Limits, metrics, refusal => refusals.Report(plugin.Id, refusal));
                BrokerStream.Attach(worker.Connection, plugin.Broker, tasks, plugin.Id, worker.NetworkLifetime.Token);
            }

            var response = await loader.LoadAsync(plugin, worker, storageDirectory, networked, cancellation);
            if (response.Fault is { } fault) throw WorkerFaults.ToError(fault, plugin.Id);
            plugin.RecordMemory((long)response.MemoryBytes);
        }
        catch (Exception e)
        {
            // Read before the worker is stopped, which closes its stderr: what it said as it died.
            var ranOutOfMemory = e is WorkerConnectionException { ProtocolViolation: false } && await RanOutOfMemoryAsync(worker);
            // Broke the protocol while loading, or killed by its system-call filter (a Load runs the plugin's
            // _initialize and plugin_init): a security violation, audited as one, whoever notices first.
            var violation = e switch
            {
                WorkerConnectionException { ProtocolViolation: true } broken => WorkerExit.ProtocolBroken(plugin.Id, broken),
                WorkerConnectionException => WorkerExit.Violation(plugin.Id, await WorkerExit.StatusAsync(worker.Process)),
                _ => null,
            };
            if (violation is not null && worker.TryBeginStopping(violation))
            {
                audit.Record(AuditEvents.SecurityViolation, plugin.Id, json => AuditTrail.WriteCause(json, violation, worker.Pid));
                await stopper.StopAsync(worker, graceful: false);
            }

            var cause = worker.EndedBy;
            if (worker.TryBeginStopping(null)) await stopper.StopAsync(worker, graceful: false);
            if (cause is not null) throw cause; // the daemon ended it while loading (it broke the protocol, say)
            if (e is SandboxException) throw;
            if (ranOutOfMemory)
            {
                var cap = options.WorkerMemoryCapBytes(plugin.Limits.MemoryBytes);
                throw new SandboxException(ErrorReason.ResourceExhausted,
                    $"loading {plugin.Id} needed more memory than its worker's cap of {cap} bytes (memory_bytes plus Sandbox:WorkerRssAllowanceBytes); its worker died",
                    ErrorMetadata.For(plugin.Id, ("limit", cap.ToString(System.Globalization.CultureInfo.InvariantCulture))), e);
            }
            if (e is TimeoutException)
            {
                // Compile, instantiate and plugin_init ran past the plugin's timeout and both graces: a runaway compile, say.
                throw new SandboxException(ErrorReason.Timeout, $"loading {plugin.Id} overran its time ({e.Message}); its worker was killed",
                    ErrorMetadata.For(plugin.Id, ("limit", ((long)(plugin.Limits.TimeoutMs + options.CallGraceMs + options.WorkerLoadGraceMs)).ToString(System.Globalization.CultureInfo.InvariantCulture))), e);
            }

            throw new SandboxException(ErrorReason.InitFailed, $"the worker failed while loading {plugin.Id}: {e.Message}", ErrorMetadata.For(plugin.Id), e);
        }

        // Serving first, then READY only while it still serves: a worker ended meanwhile (it broke the protocol,
        // say) never becomes a READY plugin's worker, and one ended after READY is seen by its terminator.
        var serving = worker.TryStartServing();
        var becameReady = serving && lifecycle.TryTransition(plugin, ready with
        {
            OnlyIf = p => worker.State == WorkerState.Serving && (ready.OnlyIf?.Invoke(p) ?? true),
            Apply = p =>
            {
                p.Current = worker;
                ready.Apply?.Invoke(p);
            },
        }).Applied;
        if (!becameReady)
        {
            var cause = worker.EndedBy;
            if (worker.TryBeginStopping(null)) await stopper.StopAsync(worker, graceful: false);
            throw cause ?? new SandboxException(ErrorReason.PluginNotFound, $"plugin {plugin.Id} was unloaded while it was loading", ErrorMetadata.For(plugin.Id));
        }

        var pipeline = worker.Pipeline = new CallPipeline(worker.Connection, plugin.Id, plugin.Limits, options.CallGrace, options.WorkerPipelineDepth, () => worker.EndedBy)
        {
            // The parent of the requests the plugin makes is the call whose turn it is.
            TurnBegins = job => plugin.Broker?.CallInFlight = job.WorkerSpan,
        };
        worker.Calls.Start($"calls of {plugin.Id}", job => ForwardCallAsync(plugin, worker, pipeline, job), () => pipeline.DrainAsync(options.UnloadTimeout),
            worker.Lifetime.Token, tasks);
        worker.Process.EnableRaisingEvents = true;
        worker.Process.Exited += (_, _) => tasks.Run($"exit of {plugin.Id}'s worker", () => OnWorkerExitedAsync(plugin, worker));
        if (worker.Process.HasExited) tasks.Run($"exit of {plugin.Id}'s worker", () => OnWorkerExitedAsync(plugin, worker));
    }

    /// <summary>
    /// Ends a worker because of a violation, a trap, a hang or a crash, exactly once: violation event, audit of
    /// the cause, kill and reap, TERMINATED or CRASHED with its audit record, then a restart if the policy says so.
    /// </summary>
    public async Task TerminateAsync(ManagedPlugin plugin, WorkerHandle worker, SandboxException cause, bool crashed)
    {
        cause = ErrorMetadata.WithPluginId(cause, plugin.Id);
        if (!worker.TryBeginStopping(cause)) return;
        metrics.Terminated(plugin.Id, cause.Reason);
        logger.LogWarning("{Action} {PluginId}: {Reason}: {Message}", crashed ? "crashed" : "terminating", plugin.Id, cause.Reason.WireName(), cause.Message);
        events.Publish(plugin.Id, e => e.Violation = AuditTrail.Violation(cause));
        await worker.NetworkLifetime.CancelAsync();
        var causeEvent = cause.Reason switch
        {
            ErrorReason.FuelExhausted or ErrorReason.MemoryLimitExceeded or ErrorReason.Timeout or ErrorReason.OutputTooLarge => AuditEvents.ResourceExhaustion,
            ErrorReason.SecurityViolation => AuditEvents.SecurityViolation,
            _ => null,
        };
        if (causeEvent is not null) audit.Record(causeEvent, plugin.Id, json => AuditTrail.WriteCause(json, cause, worker.Pid));

        await stopper.StopAsync(worker, graceful: false);
        var ended = lifecycle.TryTransition(plugin, new Transition(crashed ? PluginState.Crashed : PluginState.Terminated)
        {
            Reason = cause.Reason.WireName(),
            Message = cause.Message,
            OnlyIf = p => p.Current == worker,
            AuditDetails = json => AuditTrail.WriteCause(json, cause, worker.Pid),
        });
        // An unload that came first keeps the plugin UNLOADED, but the worker's end is still a fact to record.
        if (!ended.Applied) audit.Record(crashed ? AuditEvents.PluginCrashed : AuditEvents.PluginTerminated, plugin.Id, json => AuditTrail.WriteCause(json, cause, worker.Pid));
        restarts.MaybeSchedule(plugin, worker, () => RestartAsync(plugin, worker));
    }

    private async Task RestartAsync(ManagedPlugin plugin, WorkerHandle ended)
    {
        if (registry.IsClosed || !registry.IsCurrent(plugin)) return; // an upgraded-away version is not restarted
        if (!lifecycle.TryTransition(plugin, new Transition(PluginState.Loading) { Message = "restarting", OnlyIf = p => p.Current == ended }).Applied) return;
        try
        {
            await StartAsync(plugin, new Transition(PluginState.Ready)
            {
                AuditEvent = AuditEvents.PluginRestarted,
                Apply = p => p.Restarts++,
                AuditDetails = json => json.WriteNumber("restarts", plugin.Restarts),
            }, tasks.Stopping);
            metrics.Restart(plugin.Id, RestartOutcome.Restarted);
            logger.LogInformation("restarted {PluginId} (restart {Count})", plugin.Id, plugin.Restarts);
        }
        catch (Exception failure) when (failure is not OperationCanceledException || !tasks.Stopping.IsCancellationRequested)
        {
            var e = failure as SandboxException ?? new SandboxException(ErrorReason.PluginCrashed, failure.Message, null, failure);
            lifecycle.TryTransition(plugin, new Transition(PluginState.Crashed) { Reason = e.Reason.WireName(), Message = $"restart failed: {e.Message}" });
            metrics.Restart(plugin.Id, RestartOutcome.Failed);
            logger.LogError("restart of {PluginId} failed: {Reason}: {Message}", plugin.Id, e.Reason.WireName(), e.Message);
        }
    }

    /// <summary>Whether a worker that died said, before it did, that an allocation failed (its stderr read to the end, briefly waited for).</summary>
    private static async Task<bool> RanOutOfMemoryAsync(WorkerHandle worker)
    {
        await Task.WhenAny(worker.ErrorStreamEnded.Task, Task.Delay(TimeSpan.FromSeconds(2)));
        return worker.RanOutOfMemory;
    }

    private async Task OnWorkerExitedAsync(ManagedPlugin plugin, WorkerHandle worker)
    {
        if (worker.State is WorkerState.Stopping or WorkerState.Stopped) return;
        var status = await WorkerExit.StatusAsync(worker.Process);
        // A worker that broke the protocol exits when the daemon closes its connection: its exit may be seen before the
        // violation is acted on, and the violation is still why it ended.
        var violation = WorkerExit.Violation(plugin.Id, status)
            ?? (worker.Connection.Closed is { IsCompletedSuccessfully: true, Result: { ProtocolViolation: true } broken } ? WorkerExit.ProtocolBroken(plugin.Id, broken) : null);
        if (violation is not null) await TerminateAsync(plugin, worker, violation, crashed: false);
        else await TerminateAsync(plugin, worker, WorkerExit.Crash(plugin.Id, status), crashed: true);
    }

    /// <summary>
    /// Forwards one queued call into the worker's pipeline (returning once it is sent) and, when its outcome comes,
    /// acts on it: usage, audit, termination. The call's count, duration and Execute span are PluginCalls'; here are
    /// the worker's span and the fuel it reports.
    /// </summary>
    private async Task ForwardCallAsync(ManagedPlugin plugin, WorkerHandle worker, CallPipeline pipeline, CallJob job)
    {
        job.WorkerSpan = DaemonTracing.StartWorker(job.Span, job.QueuedAt);
        Task<CallOutcome> outcome;
        try
        {
            outcome = await pipeline.SendAsync(job, worker.Lifetime.Token);
        }
        catch (OperationCanceledException)
        {
            job.WorkerSpan?.Dispose();
            // The worker is being stopped: this call never reached it.
            job.Result.TrySetException(worker.EndedBy ?? new SandboxException(ErrorReason.PluginCrashed, $"plugin {plugin.Id} was stopped before this call ran", ErrorMetadata.For(plugin.Id)));
            return;
        }

        // Not a tracked background task (one per call would cost a thread-pool hop and a registry entry): it ends with
        // the call's outcome, which comes when the worker answers or when it is stopped.
        _ = CompleteCallAsync(plugin, worker, job, outcome);
    }

    private async Task CompleteCallAsync(ManagedPlugin plugin, WorkerHandle worker, CallJob job, Task<CallOutcome> outcome)
    {
        using var span = job.WorkerSpan;
        try
        {
            await HandleOutcomeAsync(plugin, worker, job, await outcome);
        }
        catch (Exception e)
        {
            logger.LogError(e, "a call of {PluginId} failed in the daemon", plugin.Id);
            job.Result.TrySetException(e as SandboxException ?? new SandboxException(ErrorReason.PluginCrashed, $"the call failed in the daemon: {e.Message}", ErrorMetadata.For(plugin.Id), e));
        }
    }

    private async Task HandleOutcomeAsync(ManagedPlugin plugin, WorkerHandle worker, CallJob job, CallOutcome outcome)
    {
        if (outcome.Cancelled)
        {
            job.Result.TrySetCanceled(job.Cancellation);
            return;
        }

        if (outcome.Ran) Interlocked.Increment(ref plugin.Calls);
        if (outcome.MemoryBytes is { } memory) plugin.RecordMemory(memory);
        Interlocked.Add(ref plugin.FuelConsumedTotal, outcome.FuelConsumed);
        metrics.FuelConsumed(plugin.Id, outcome.FuelConsumed);
        if (outcome.Response is { } response)
        {
            job.Result.TrySetResult(response);
            return;
        }

        var error = outcome.Error!;
        if (outcome.Ran) Interlocked.Increment(ref plugin.Failures);
        if (outcome.Terminate)
        {
            // A worker that died during the call may have been killed by its system-call filter: that, not a crash, is why it ended.
            var violation = outcome.Crashed ? WorkerExit.Violation(plugin.Id, await WorkerExit.StatusAsync(worker.Process)) : null;
            await TerminateAsync(plugin, worker, violation ?? error, crashed: violation is null && outcome.Crashed);
            if (outcome.ReportWhyEnded) error = worker.EndedBy ?? error;
        }
        else if (outcome.WorkerFault)
        {
            audit.Record(AuditEvents.PluginExecuteFailed, plugin.Id, json =>
            {
                json.WriteString("command", job.Command);
                json.WriteString("reason", error.Reason.WireName());
                AuditTrail.WriteMessage(json, error.Message);
            });
        }

        job.Result.TrySetException(error);
    }
}
