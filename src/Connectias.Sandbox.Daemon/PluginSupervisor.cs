using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Connectias.Sandbox.Audit;
using Connectias.Sandbox.Contracts;
using Connectias.Sandbox.Packaging;
using Connectias.Sandbox.V1;
using Google.Protobuf;
using Microsoft.Extensions.Options;
using WorkerV1 = Connectias.Sandbox.Worker.V1;

namespace Connectias.Sandbox.Daemon;

/// <summary>
/// Owns every plugin: the load phase, the per-plugin call queue, monitoring, termination, restarts,
/// unload and shutdown. The only place that changes a plugin's state.
/// </summary>
internal sealed partial class PluginSupervisor(
    IOptions<DaemonOptions> options,
    AdminPolicy policy,
    AuditLog audit,
    EventHub events,
    WorkerLauncher launcher,
    ILogger<PluginSupervisor> logger) : BackgroundService
{
    private static readonly TimeSpan CallGrace = TimeSpan.FromSeconds(2);
    private readonly DaemonOptions _options = options.Value;
    private readonly Lock _registryLock = new();
    private readonly Dictionary<string, ManagedPlugin> _plugins = new(StringComparer.Ordinal);
    private readonly PackageReader _reader = new();
    private int _incarnations;

    // ---- load ---------------------------------------------------------------------------------------

    public async Task<ManagedPlugin> LoadAsync(LoadPluginRequest request, CancellationToken cancellation)
    {
        var source = request.SourceCase == LoadPluginRequest.SourceOneofCase.Path ? request.Path : "(bytes)";
        ManagedPlugin? plugin = null;
        try
        {
            var package = request.SourceCase switch
            {
                LoadPluginRequest.SourceOneofCase.Path => _reader.Read(request.Path),
                LoadPluginRequest.SourceOneofCase.Package => _reader.Read(request.Package.Memory),
                _ => throw new SandboxException(ErrorReason.CorruptedData, "LoadPlugin needs a path or the package bytes"),
            };
            var manifest = package.Manifest;
            ManifestParser.CheckCompatibility(manifest, SemanticVersion.Parse(CoreVersion.Current), CoreVersion.SupportedAbiVersions);
            var signer = SignatureVerifier.Verify(package, TrustStore.Load(_options.ResolvedTrustDir), _options.AllowUnsigned);
            var grant = policy.For(manifest.Id);
            if (manifest.Permissions.Where(p => !grant.Permissions.Contains(p)).Select(p => (Permission?)p).FirstOrDefault() is { } missing)
            {
                throw new SandboxException(ErrorReason.PermissionDenied,
                    $"plugin {manifest.Id} asks for the '{missing.WireName()}' permission, which the policy ({policy.Source}) does not grant it",
                    ErrorMetadata.For(manifest.Id, ("permission", missing.WireName())));
            }

            plugin = new ManagedPlugin(package, signer, grant, EffectiveLimitsFor(manifest, grant));
            Register(plugin);
            await StartIncarnationAsync(plugin, cancellation);
            Audit(AuditEvents.PluginLoad, plugin.Id, json =>
            {
                json.WriteString("version", manifest.Version.ToString());
                json.WriteString("source", source);
                json.WriteString("signer", signer.Fingerprint ?? "unsigned");
                json.WriteNumber("pid", plugin.Current!.Pid);
                json.WriteString("sandbox", launcher.UseBubblewrap ? "bubblewrap" : "process");
            });
            Audit(AuditEvents.PermissionGrant, plugin.Id, json =>
            {
                json.WriteStartArray("permissions");
                foreach (var permission in manifest.Permissions) json.WriteStringValue(permission.WireName());
                json.WriteEndArray();
            });
            logger.LogInformation("loaded {PluginId} {Version} (pid {Pid}, signer {Signer})", plugin.Id, manifest.Version, plugin.Current!.Pid, signer.Fingerprint ?? "unsigned");
            return plugin;
        }
        catch (SandboxException e)
        {
            var id = plugin?.Id ?? (e.Metadata.TryGetValue("plugin_id", out var known) ? known : "");
            if (plugin is not null)
            {
                lock (_registryLock)
                    if (_plugins.TryGetValue(plugin.Id, out var registered) && registered == plugin && e.Reason != ErrorReason.AlreadyLoaded)
                        _plugins.Remove(plugin.Id);
            }

            Audit(AuditEvents.LoadRejected, id, json =>
            {
                json.WriteString("reason", e.Reason.WireName());
                json.WriteString("message", e.Message);
                json.WriteString("source", source);
            });
            logger.LogWarning("load of {Source} rejected: {Reason}: {Message}", source, e.Reason.WireName(), e.Message);
            throw WithPluginId(e, id);
        }
    }

    private void Register(ManagedPlugin plugin)
    {
        lock (_registryLock)
        {
            if (_stopping) throw new SandboxException(ErrorReason.PluginCrashed, "the daemon is shutting down", ErrorMetadata.For(plugin.Id));
            if (_plugins.TryGetValue(plugin.Id, out var existing) && existing.State is PluginState.Loading or PluginState.Ready)
                throw new SandboxException(ErrorReason.AlreadyLoaded, $"plugin {plugin.Id} is already loaded (version {existing.Manifest.Version})", ErrorMetadata.For(plugin.Id));
            var active = _plugins.Values.Count(p => p.State is PluginState.Loading or PluginState.Ready);
            if (active >= _options.MaxPlugins)
            {
                throw new SandboxException(ErrorReason.ResourceExhausted, $"{active} plugins are loaded; this daemon allows {_options.MaxPlugins}",
                    ErrorMetadata.For(plugin.Id, ("limit", _options.MaxPlugins.ToString(CultureInfo.InvariantCulture)), ("used", active.ToString(CultureInfo.InvariantCulture))));
            }

            foreach (var dependency in plugin.Manifest.Dependencies)
            {
                if (!_plugins.TryGetValue(dependency, out var loaded) || loaded.State != PluginState.Ready)
                {
                    throw new SandboxException(ErrorReason.DependencyNotMet, $"plugin {plugin.Id} depends on {dependency}, which is not loaded and ready",
                        ErrorMetadata.For(plugin.Id, ("dependency", dependency)));
                }
            }

            if (existing is not null)
            {
                // A terminated, crashed or unloaded predecessor: retire it, so a restart it had scheduled never runs.
                lock (existing.Sync) existing.State = PluginState.Unloaded;
                existing.Broker?.Dispose();
            }

            _plugins[plugin.Id] = plugin;
        }
    }

    private async Task StartIncarnationAsync(ManagedPlugin plugin, CancellationToken cancellation)
    {
        var number = Interlocked.Increment(ref _incarnations);
        var runDirectory = Path.Combine(_options.StateDir, "run", "plugins", $"{plugin.Id}-{number}");
        CreatePrivateDirectory(runDirectory);
        string? storageDirectory = null;
        if (plugin.Manifest.Permissions.Contains(Permission.Storage))
        {
            storageDirectory = Path.Combine(_options.StateDir, "storage", plugin.Id);
            CreatePrivateDirectory(storageDirectory);
        }

        StartedWorker worker;
        try
        {
            worker = await launcher.StartAsync(runDirectory, storageDirectory, TimeSpan.FromMilliseconds(_options.WorkerStartTimeoutMs), cancellation);
        }
        catch
        {
            TryDeleteDirectory(runDirectory);
            throw;
        }

        var incarnation = new Incarnation(number, worker, UnixSocketChannel.Create(worker.SocketPath), runDirectory, Math.Max(1, _options.QueueLimit));
        FollowWorkerOutput(plugin, incarnation);
        var load = new WorkerV1.LoadRequest
        {
            PluginId = plugin.Id,
            PluginVersion = plugin.Manifest.Version.ToString(),
            Module = UnsafeByteOperations.UnsafeWrap(plugin.Package.Module),
            Limits = new WorkerV1.WorkerLimits
            {
                MemoryBytes = plugin.Limits.MemoryBytes,
                FuelPerCall = plugin.Limits.FuelPerCall,
                TimeoutMs = plugin.Limits.TimeoutMs,
                StorageBytes = plugin.Limits.StorageBytes,
                OutputBytes = plugin.Limits.OutputBytes,
            },
            ContextJson = ByteString.CopyFrom(ContextJson(plugin)),
            StorageDir = storageDirectory ?? "",
            CommandsDeclared = plugin.Manifest.Commands is not null,
        };
        load.GrantedPermissions.AddRange(plugin.Manifest.Permissions.Select(p => p.WireName()));
        if (plugin.Manifest.Permissions.Contains(Permission.Network))
        {
            plugin.Broker ??= new NetworkBroker(plugin.Id, plugin.Manifest.AllowedHosts, plugin.Grant, plugin.Limits, refusal => OnNetworkRefusal(plugin, refusal));
            await OpenBrokerStreamAsync(plugin, incarnation);
            load.NetworkBroker = true;
        }

        if (plugin.Manifest.Commands is { } commands) load.DeclaredCommands.AddRange(commands.Select(c => c.Name));

        try
        {
            var response = await incarnation.Client.LoadAsync(load, deadline: DateTime.UtcNow.AddMilliseconds(plugin.Limits.TimeoutMs) + CallGrace + TimeSpan.FromSeconds(30), cancellationToken: cancellation);
            if (response.Fault is { } fault) throw FaultToError(plugin.Id, fault);
            Interlocked.Exchange(ref plugin.MemoryBytes, (long)response.MemoryBytes);
        }
        catch (Exception e)
        {
            incarnation.Ending = true;
            await StopWorkerAsync(incarnation, graceful: false);
            if (e is SandboxException) throw;
            throw new SandboxException(ErrorReason.InitFailed, $"worker failed while loading {plugin.Id}: {e.Message}", ErrorMetadata.For(plugin.Id), e);
        }

        bool unloadedMeanwhile;
        lock (plugin.Sync)
        {
            unloadedMeanwhile = plugin.State == PluginState.Unloaded;
            if (!unloadedMeanwhile)
            {
                plugin.Current = incarnation;
                SetState(plugin, PluginState.Ready, "", "");
            }
        }

        if (unloadedMeanwhile)
        {
            incarnation.Ending = true;
            await StopWorkerAsync(incarnation, graceful: false);
            throw new SandboxException(ErrorReason.PluginNotFound, $"plugin {plugin.Id} was unloaded while it was loading", ErrorMetadata.For(plugin.Id));
        }

        incarnation.QueueLoop = Task.Run(() => RunQueueAsync(plugin, incarnation));
        worker.Process.EnableRaisingEvents = true;
        worker.Process.Exited += (_, _) => _ = OnWorkerExitedAsync(plugin, incarnation);
        if (worker.Process.HasExited) _ = OnWorkerExitedAsync(plugin, incarnation);
    }

    // ---- network broker -----------------------------------------------------------------------------

    /// <summary>Opens the worker's Broker stream and serves the plugin's requests on it until the worker ends.</summary>
    private async Task OpenBrokerStreamAsync(ManagedPlugin plugin, Incarnation incarnation)
    {
        var stream = incarnation.Client.Broker(cancellationToken: incarnation.Lifetime.Token);
        incarnation.BrokerStream = stream;
        var writeLock = new SemaphoreSlim(1, 1);
        await stream.RequestStream.WriteAsync(new WorkerV1.BrokerReply { Id = 0 }); // opens the stream before Load
        _ = Task.Run(async () =>
        {
            try
            {
                while (await stream.ResponseStream.MoveNext(incarnation.Lifetime.Token))
                {
                    var call = stream.ResponseStream.Current;
                    _ = Task.Run(async () =>
                    {
                        var (code, response) = await plugin.Broker!.HandleAsync(call.RequestJson.ToByteArray(), TimeSpan.FromMilliseconds(call.DeadlineMs), incarnation.NetworkLifetime.Token);
                        await writeLock.WaitAsync();
                        try
                        {
                            await stream.RequestStream.WriteAsync(new WorkerV1.BrokerReply { Id = call.Id, Code = code, ResponseJson = ByteString.CopyFrom(response) });
                        }
                        catch (Exception e) when (e is Grpc.Core.RpcException or InvalidOperationException or OperationCanceledException)
                        {
                            // the worker is gone
                        }
                        finally
                        {
                            writeLock.Release();
                        }
                    });
                }
            }
            catch (Exception e) when (e is Grpc.Core.RpcException or OperationCanceledException or InvalidOperationException)
            {
                // the incarnation ended
            }
        });
    }

    private void OnNetworkRefusal(ManagedPlugin plugin, NetworkRefusal refusal)
    {
        var reason = refusal.Code == AbiCodes.Denied ? ErrorReason.SecurityViolation : ErrorReason.ResourceExhausted;
        logger.LogWarning("network request of {PluginId} refused ({Rule}, host {Host}): {Message}", plugin.Id, refusal.Rule, refusal.Host, refusal.Message);
        events.Publish(plugin.Id, e => e.Violation = Violation(new SandboxException(reason, refusal.Message,
            ErrorMetadata.For(plugin.Id, ("rule", refusal.Rule), ("host", refusal.Host), ("code", refusal.Code.ToString(CultureInfo.InvariantCulture))))));
        Audit(reason == ErrorReason.SecurityViolation ? AuditEvents.SecurityViolation : AuditEvents.ResourceExhaustion, plugin.Id, json =>
        {
            json.WriteString("kind", "network");
            json.WriteString("rule", refusal.Rule);
            json.WriteString("host", refusal.Host);
            json.WriteNumber("code", refusal.Code);
            json.WriteString("message", refusal.Message);
        });
    }

    // ---- execute ------------------------------------------------------------------------------------

    public async Task<V1.ExecuteResponse> ExecuteAsync(V1.ExecuteRequest request, DateTime? deadline, CancellationToken cancellation)
    {
        var plugin = Find(request.PluginId);
        Incarnation incarnation;
        lock (plugin.Sync)
        {
            if (plugin.State == PluginState.Unloaded)
                throw new SandboxException(ErrorReason.PluginNotFound, $"plugin {plugin.Id} was unloaded", ErrorMetadata.For(plugin.Id));
            if (plugin.State != PluginState.Ready || plugin.Current is null)
            {
                throw new SandboxException(ErrorReason.PluginCrashed,
                    $"plugin {plugin.Id} is not ready (state {plugin.State}{(plugin.StateReason.Length > 0 ? $": {plugin.StateReason}" : "")})", ErrorMetadata.For(plugin.Id));
            }

            incarnation = plugin.Current;
        }

        if (plugin.Manifest.Commands is { } declared && declared.All(c => c.Name != request.Command))
        {
            Interlocked.Increment(ref plugin.Failures);
            throw new SandboxException(ErrorReason.InvalidCommand,
                $"plugin {plugin.Id} declares no command '{request.Command}'; it declares: {string.Join(", ", declared.Select(c => c.Name))}", ErrorMetadata.For(plugin.Id));
        }

        var job = new CallJob(request.Command, request.Args.ToByteArray(), deadline, cancellation);
        if (!incarnation.Queue.Writer.TryWrite(job))
        {
            Interlocked.Increment(ref plugin.Failures);
            throw new SandboxException(ErrorReason.QueueFull, $"plugin {plugin.Id} already has {_options.QueueLimit} calls waiting",
                ErrorMetadata.For(plugin.Id, ("limit", _options.QueueLimit.ToString(CultureInfo.InvariantCulture))));
        }

        return await job.Result.Task.WaitAsync(cancellation);
    }

    private async Task RunQueueAsync(ManagedPlugin plugin, Incarnation incarnation)
    {
        try
        {
            await foreach (var job in incarnation.Queue.Reader.ReadAllAsync(incarnation.Lifetime.Token))
            {
                if (job.Cancellation.IsCancellationRequested)
                {
                    job.Result.TrySetCanceled(job.Cancellation);
                    continue;
                }

                await RunJobAsync(plugin, incarnation, job);
            }
        }
        catch (OperationCanceledException)
        {
            // the incarnation ended; the jobs left are failed by whoever ended it
        }
    }

    private async Task RunJobAsync(ManagedPlugin plugin, Incarnation incarnation, CallJob job)
    {
        var remaining = job.Deadline is { } clientDeadline ? clientDeadline - DateTime.UtcNow : (TimeSpan?)null;
        if (remaining <= TimeSpan.Zero)
        {
            job.Result.TrySetException(new SandboxException(ErrorReason.Timeout, $"the call's deadline passed while it waited for plugin {plugin.Id}", ErrorMetadata.For(plugin.Id)));
            return;
        }

        var limit = TimeSpan.FromMilliseconds(plugin.Limits.TimeoutMs);
        var callWindow = remaining is { } r && r < limit ? r : limit;
        Interlocked.Increment(ref plugin.Calls);
        try
        {
            // The worker enforces the deadline itself; the daemon's own deadline, a little later, catches a worker that hangs.
            var response = await incarnation.Client.ExecuteAsync(new WorkerV1.ExecuteRequest
            {
                Command = job.Command,
                Args = UnsafeByteOperations.UnsafeWrap(job.Args),
                DeadlineMs = (ulong)Math.Max(1, callWindow.TotalMilliseconds),
            }, deadline: DateTime.UtcNow + callWindow + CallGrace);

            Interlocked.Exchange(ref plugin.MemoryBytes, (long)response.MemoryBytes);
            UpdatePeak(plugin, (long)response.MemoryBytes);
            if (response.Fault is { } fault)
            {
                var error = FaultToError(plugin.Id, fault);
                Interlocked.Increment(ref plugin.Failures);
                if (error.Metadata.TryGetValue("fuel_consumed", out var fuelText) && long.TryParse(fuelText, out var fuel)) Interlocked.Add(ref plugin.FuelConsumedTotal, fuel);
                if (fault.Fatal)
                {
                    await TerminateAsync(plugin, incarnation, error, crashed: error.Reason == ErrorReason.PluginCrashed);
                }
                else
                {
                    Audit(AuditEvents.PluginExecuteFailed, plugin.Id, json =>
                    {
                        json.WriteString("command", job.Command);
                        json.WriteString("reason", error.Reason.WireName());
                        json.WriteString("message", error.Message);
                    });
                }

                job.Result.TrySetException(error);
                return;
            }

            Interlocked.Add(ref plugin.FuelConsumedTotal, (long)response.FuelConsumed);
            job.Result.TrySetResult(new V1.ExecuteResponse
            {
                Output = response.Output,
                Stats = new ExecutionStats { FuelConsumed = response.FuelConsumed, DurationUs = response.DurationUs, MemoryBytes = response.MemoryBytes },
            });
        }
        catch (Grpc.Core.RpcException e)
        {
            Interlocked.Increment(ref plugin.Failures);
            SandboxException error;
            if (incarnation.EndedBy is { } cause)
            {
                error = cause; // the daemon ended this worker on purpose: the caller learns why
            }
            else if (e.StatusCode == Grpc.Core.StatusCode.DeadlineExceeded)
            {
                error = new SandboxException(ErrorReason.Timeout, $"plugin {plugin.Id} did not answer within {callWindow.TotalMilliseconds:F0} ms; its worker was killed",
                    ErrorMetadata.For(plugin.Id, ("limit", ((long)callWindow.TotalMilliseconds).ToString(CultureInfo.InvariantCulture))));
                await TerminateAsync(plugin, incarnation, error, crashed: false);
            }
            else
            {
                error = new SandboxException(ErrorReason.PluginCrashed, $"the worker of plugin {plugin.Id} died during the call ({e.Status.Detail})", ErrorMetadata.For(plugin.Id));
                await TerminateAsync(plugin, incarnation, error, crashed: true);
                error = incarnation.EndedBy ?? error;
            }

            job.Result.TrySetException(error);
        }
    }

    // ---- termination, crashes and restarts ----------------------------------------------------------

    /// <summary>
    /// Ends a worker because of a violation, a trap or a crash: kill its process tree, reap it, remove its
    /// socket and scratch files, audit, fail the calls still queued, and restart it if the policy says so.
    /// </summary>
    public async Task TerminateAsync(ManagedPlugin plugin, Incarnation incarnation, SandboxException cause, bool crashed)
    {
        lock (plugin.Sync)
        {
            if (incarnation.Ending) return;
            incarnation.Ending = true;
            incarnation.EndedBy = WithPluginId(cause, plugin.Id);
            if (plugin.Current == incarnation)
                SetState(plugin, crashed ? PluginState.Crashed : PluginState.Terminated, cause.Reason.WireName(), cause.Message);
        }

        logger.LogWarning("{Action} {PluginId}: {Reason}: {Message}", crashed ? "crashed" : "terminating", plugin.Id, cause.Reason.WireName(), cause.Message);
        events.Publish(plugin.Id, e => e.Violation = Violation(cause));
        await incarnation.NetworkLifetime.CancelAsync();
        await StopWorkerAsync(incarnation, graceful: false);

        var auditEvent = cause.Reason switch
        {
            ErrorReason.FuelExhausted or ErrorReason.MemoryLimitExceeded or ErrorReason.Timeout or ErrorReason.OutputTooLarge => AuditEvents.ResourceExhaustion,
            ErrorReason.SecurityViolation => AuditEvents.SecurityViolation,
            _ => null,
        };
        if (auditEvent is not null) Audit(auditEvent, plugin.Id, json => WriteCause(json, cause, incarnation));
        Audit(crashed ? AuditEvents.PluginCrashed : AuditEvents.PluginTerminated, plugin.Id, json => WriteCause(json, cause, incarnation));
        MaybeRestart(plugin, incarnation);
    }

    private async Task OnWorkerExitedAsync(ManagedPlugin plugin, Incarnation incarnation)
    {
        if (incarnation.Ending) return;
        var code = incarnation.Worker.Process.HasExited ? incarnation.Worker.Process.ExitCode : -1;
        await TerminateAsync(plugin, incarnation,
            new SandboxException(ErrorReason.PluginCrashed, $"the worker of plugin {plugin.Id} exited unexpectedly (exit status {code})", ErrorMetadata.For(plugin.Id)), crashed: true);
    }

    private void MaybeRestart(ManagedPlugin plugin, Incarnation ended)
    {
        if (plugin.Grant.Restart != RestartPolicy.OnFailure || _stopping) return;
        TimeSpan delay;
        lock (plugin.Sync)
        {
            if (plugin.Current != ended || plugin.State is not (PluginState.Terminated or PluginState.Crashed)) return;
            var now = DateTime.UtcNow;
            while (plugin.RecentRestarts.Count > 0 && now - plugin.RecentRestarts.Peek() > TimeSpan.FromMinutes(1)) plugin.RecentRestarts.Dequeue();
            if (plugin.RecentRestarts.Count >= 5)
            {
                logger.LogError("not restarting {PluginId}: it failed {Count} times within a minute", plugin.Id, plugin.RecentRestarts.Count);
                return;
            }

            delay = TimeSpan.FromMilliseconds(250 * Math.Pow(2, plugin.RecentRestarts.Count)); // 0.25 s, 0.5 s, 1 s, 2 s, 4 s
            plugin.RecentRestarts.Enqueue(now + delay);
        }

        _ = Task.Run(async () =>
        {
            await Task.Delay(delay);
            lock (plugin.Sync)
                if (plugin.Current != ended || plugin.State is not (PluginState.Terminated or PluginState.Crashed) || _stopping) return;
            try
            {
                lock (plugin.Sync) SetState(plugin, PluginState.Loading, "", "restarting");
                await StartIncarnationAsync(plugin, CancellationToken.None);
                lock (plugin.Sync) plugin.Restarts++;
                Audit(AuditEvents.PluginRestarted, plugin.Id, json => json.WriteNumber("restarts", plugin.Restarts));
                logger.LogInformation("restarted {PluginId} (restart {Count})", plugin.Id, plugin.Restarts);
            }
            catch (SandboxException e)
            {
                lock (plugin.Sync) SetState(plugin, PluginState.Crashed, e.Reason.WireName(), $"restart failed: {e.Message}");
                logger.LogError("restart of {PluginId} failed: {Reason}: {Message}", plugin.Id, e.Reason.WireName(), e.Message);
            }
        });
    }

    /// <summary>Kills (or, when graceful, first asks) the worker, reaps it and removes its files; fails queued calls.</summary>
    private async Task StopWorkerAsync(Incarnation incarnation, bool graceful)
    {
        incarnation.Queue.Writer.TryComplete();
        await incarnation.Lifetime.CancelAsync();
        incarnation.BrokerStream?.Dispose();
        var process = incarnation.Worker.Process;
        var tree = ProcessTree.WithDescendants(process.Id);
        if (graceful && !process.HasExited)
        {
            // SIGTERM to every member: inside bubblewrap the worker is a grandchild and must hear it itself.
            foreach (var pid in tree) ProcessTree.Terminate(pid);
            await WaitForExitAsync(tree, TimeSpan.FromSeconds(2));
        }

        if (!process.HasExited || tree.Any(ProcessTree.IsAlive)) ProcessTree.KillTree(process.Id);
        foreach (var pid in tree.Where(ProcessTree.IsAlive)) ProcessTree.Kill(pid);
        using (var reap = new CancellationTokenSource(TimeSpan.FromSeconds(5)))
        {
            try
            {
                await process.WaitForExitAsync(reap.Token);
            }
            catch (OperationCanceledException)
            {
                logger.LogError("worker {Pid} did not exit after SIGKILL", process.Id);
            }
        }

        // Processes in bubblewrap's PID namespace die with it, a moment after the outer process.
        await WaitForExitAsync(tree, TimeSpan.FromSeconds(2));

        while (incarnation.Queue.Reader.TryRead(out var queued))
        {
            queued.Result.TrySetException(new SandboxException(ErrorReason.PluginCrashed,
                $"the plugin was stopped before this call ran{(incarnation.EndedBy is { } cause ? $" ({cause.Reason.WireName()})" : "")}", incarnation.EndedBy?.Metadata));
        }

        incarnation.Channel.Dispose();
        TryDeleteDirectory(incarnation.RunDirectory);
    }

    private static async Task WaitForExitAsync(List<int> pids, TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        while (pids.Any(ProcessTree.IsAlive) && clock.Elapsed < timeout) await Task.Delay(10);
    }

    // ---- unload and shutdown ------------------------------------------------------------------------

    public async Task<CleanupReport> UnloadAsync(string pluginId)
    {
        var plugin = Find(pluginId);
        var clock = Stopwatch.StartNew();
        var report = new CleanupReport { PluginId = plugin.Id };
        Incarnation? incarnation;
        lock (plugin.Sync)
        {
            if (plugin.State == PluginState.Unloaded) throw new SandboxException(ErrorReason.PluginNotFound, $"plugin {plugin.Id} is already unloaded", ErrorMetadata.For(plugin.Id));
            incarnation = plugin.Current;
            if (incarnation is not null && !incarnation.Ending)
            {
                incarnation.Ending = true;
                incarnation.EndedBy = new SandboxException(ErrorReason.PluginCrashed, $"plugin {plugin.Id} is being unloaded", ErrorMetadata.For(plugin.Id));
            }
            else
            {
                incarnation = null; // already terminated: its worker is gone
            }

            SetState(plugin, PluginState.Unloaded, "", "unloaded");
        }

        if (incarnation is not null)
        {
            await incarnation.NetworkLifetime.CancelAsync(); // network requests end now, so the call in flight can finish
            incarnation.Queue.Writer.TryComplete();
            if (incarnation.QueueLoop is { } loop)
                await Task.WhenAny(loop, Task.Delay(_options.UnloadTimeoutMs)); // let the call in flight finish
            try
            {
                var cleanup = await incarnation.Client.CleanupAsync(new WorkerV1.CleanupRequest { TimeoutMs = (ulong)_options.UnloadTimeoutMs },
                    deadline: DateTime.UtcNow.AddMilliseconds(_options.UnloadTimeoutMs) + CallGrace);
                report.PluginCleanupCalled = cleanup.Called;
                report.PluginCleanupCode = cleanup.Code;
                if (cleanup.Fault is { } fault) report.Issues.Add(Issue(CleanupIssueKind.ResourceLeak, $"plugin_cleanup failed: {fault.Reason}: {fault.Message}"));
                else if (cleanup.Called && cleanup.Code != 0) report.Issues.Add(Issue(CleanupIssueKind.ResourceLeak, $"plugin_cleanup returned {cleanup.Code}"));
            }
            catch (Grpc.Core.RpcException e)
            {
                report.Issues.Add(Issue(CleanupIssueKind.ResourceLeak, $"plugin_cleanup could not run: {e.Status.Detail}"));
            }

            var tree = ProcessTree.WithDescendants(incarnation.Pid);
            await StopWorkerAsync(incarnation, graceful: true);
            VerifyGone(report, incarnation, tree);
        }

        if (plugin.Broker is { } broker)
        {
            var waited = Stopwatch.StartNew();
            while (Volatile.Read(ref broker.InFlight) > 0 && waited.ElapsedMilliseconds < 2000) await Task.Delay(10);
            if (Volatile.Read(ref broker.InFlight) > 0)
                report.Issues.Add(Issue(CleanupIssueKind.NetworkConnectionOpen, $"{broker.InFlight} network request(s) could not be closed"));
            broker.Dispose();
        }

        report.DurationUs = (ulong)clock.Elapsed.TotalMicroseconds;
        if (!Audit(AuditEvents.PluginUnload, plugin.Id, json => json.WriteString("version", plugin.Manifest.Version.ToString())) |
            !Audit(AuditEvents.CleanupReport, plugin.Id, json =>
            {
                json.WriteBoolean("plugin_cleanup_called", report.PluginCleanupCalled);
                json.WriteNumber("plugin_cleanup_code", report.PluginCleanupCode);
                json.WriteStartArray("issues");
                foreach (var issue in report.Issues) json.WriteStringValue($"{issue.Kind}: {issue.Detail}");
                json.WriteEndArray();
            }))
        {
            report.Issues.Add(Issue(CleanupIssueKind.AuditLogFailed, "the unload could not be written to the audit log"));
        }

        logger.LogInformation("unloaded {PluginId}: {Issues} cleanup issue(s)", plugin.Id, report.Issues.Count);
        return report;
    }

    /// <summary>After the worker was stopped: process tree gone, socket gone, scratch files gone.</summary>
    private static void VerifyGone(CleanupReport report, Incarnation incarnation, List<int> tree)
    {
        foreach (var pid in tree.Where(ProcessTree.IsAlive))
            report.Issues.Add(Issue(pid == incarnation.Pid ? CleanupIssueKind.MemoryNotFreed : CleanupIssueKind.ResourceLeak, $"process {pid} is still alive"));
        if (File.Exists(incarnation.Worker.SocketPath)) report.Issues.Add(Issue(CleanupIssueKind.ResourceLeak, $"socket {incarnation.Worker.SocketPath} remains"));
        if (Directory.Exists(incarnation.RunDirectory)) report.Issues.Add(Issue(CleanupIssueKind.ResourceLeak, $"scratch directory {incarnation.RunDirectory} remains"));
    }

    private volatile bool _stopping;

    /// <summary>SIGTERM/SIGINT: unload every plugin in parallel.</summary>
    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        _stopping = true;
        List<ManagedPlugin> active;
        lock (_registryLock) active = _plugins.Values.Where(p => p.State != PluginState.Unloaded).ToList();
        logger.LogInformation("shutting down: unloading {Count} plugin(s)", active.Count);
        await Task.WhenAll(active.Select(async plugin =>
        {
            try
            {
                await UnloadAsync(plugin.Id);
            }
            catch (Exception e)
            {
                logger.LogError(e, "unloading {PluginId} at shutdown failed", plugin.Id);
            }
        }));
        await base.StopAsync(cancellationToken);
    }

    // ---- monitoring ---------------------------------------------------------------------------------

    /// <summary>Samples every worker's RSS and CPU from /proc and enforces the process-level memory cap.</summary>
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(_options.MonitorIntervalMs));
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            List<ManagedPlugin> running;
            lock (_registryLock) running = _plugins.Values.Where(p => p.State == PluginState.Ready).ToList();
            foreach (var plugin in running)
            {
                var incarnation = plugin.Current;
                if (incarnation is null || incarnation.Ending) continue;
                var tree = ProcessTree.WithDescendants(incarnation.Pid);
                var rss = ProcessTree.RssBytes(tree);
                Interlocked.Exchange(ref plugin.WorkerRssBytes, rss);
                plugin.WorkerCpuSeconds = ProcessTree.CpuSeconds(tree);
                var cap = (long)plugin.Limits.MemoryBytes + _options.WorkerRssAllowanceBytes;
                if (rss > cap)
                {
                    await TerminateAsync(plugin, incarnation, new SandboxException(ErrorReason.MemoryLimitExceeded,
                        $"the worker of plugin {plugin.Id} uses {rss} bytes of resident memory; its cap is {cap}",
                        ErrorMetadata.For(plugin.Id, ("limit", cap.ToString(CultureInfo.InvariantCulture)), ("used", rss.ToString(CultureInfo.InvariantCulture)))), crashed: false);
                }
            }
        }
    }

    // ---- queries ------------------------------------------------------------------------------------

    public ManagedPlugin Find(string pluginId)
    {
        lock (_registryLock)
        {
            return _plugins.TryGetValue(pluginId, out var plugin)
                ? plugin
                : throw new SandboxException(ErrorReason.PluginNotFound, $"no plugin {pluginId} is loaded", ErrorMetadata.For(pluginId));
        }
    }

    public IReadOnlyList<ManagedPlugin> All()
    {
        lock (_registryLock) return _plugins.Values.OrderBy(p => p.Id, StringComparer.Ordinal).ToList();
    }

    // ---- helpers ------------------------------------------------------------------------------------

    private void SetState(ManagedPlugin plugin, PluginState state, string reason, string message)
    {
        var previous = plugin.State;
        plugin.State = state;
        plugin.StateReason = reason;
        plugin.StateMessage = message;
        if (previous != state)
        {
            events.Publish(plugin.Id, e => e.StateChanged = new StateChanged { Previous = previous, Current = state, Reason = reason, Message = message });
        }
    }

    /// <summary>Writes an audit record and publishes it; false when the log could not be written.</summary>
    private bool Audit(string auditEvent, string pluginId, Action<Utf8JsonWriter>? details = null)
    {
        try
        {
            var record = audit.Append(auditEvent, pluginId, details);
            events.Publish(pluginId, e => e.Audit = new AuditEvent { Seq = (ulong)record.Seq, Event = record.Event, DetailsJson = record.DetailsJson, Hash = record.Hash });
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ObjectDisposedException)
        {
            logger.LogError(e, "AUDIT LOG FAILED for {Event} of {PluginId}", auditEvent, pluginId);
            return false;
        }
    }

    private static void WriteCause(Utf8JsonWriter json, SandboxException cause, Incarnation incarnation)
    {
        json.WriteString("reason", cause.Reason.WireName());
        json.WriteString("message", cause.Message);
        json.WriteNumber("pid", incarnation.Pid);
        foreach (var (key, value) in cause.Metadata.Where(m => m.Key != "plugin_id")) json.WriteString(key, value);
    }

    private static EffectiveLimits EffectiveLimitsFor(PluginManifest manifest, PolicyGrant grant)
    {
        return ResourceLimits.Effective(manifest.ResourceLimits, grant.Limits).ToProto();
    }

    private static byte[] ContextJson(ManagedPlugin plugin) => PluginContextJson.Build(plugin.Id, plugin.Manifest.Version.ToString(),
        plugin.Manifest.Permissions, ResourceLimits.Defaults with
        {
            MemoryBytes = (long)plugin.Limits.MemoryBytes,
            FuelPerCall = (long)plugin.Limits.FuelPerCall,
            TimeoutMs = (long)plugin.Limits.TimeoutMs,
            StorageBytes = (long)plugin.Limits.StorageBytes,
            OutputBytes = (long)plugin.Limits.OutputBytes,
        });

    private void FollowWorkerOutput(ManagedPlugin plugin, Incarnation incarnation)
    {
        var process = incarnation.Worker.Process;
        _ = Task.Run(async () =>
        {
            while (await process.StandardError.ReadLineAsync() is { } line) LogWorkerLine(plugin.Id, line);
        });
        _ = Task.Run(async () =>
        {
            // After the handshake a worker has nothing to say on stdout: anything there breaks the protocol.
            var line = await process.StandardOutput.ReadLineAsync();
            if (line is not null && !incarnation.Ending)
            {
                await TerminateAsync(plugin, incarnation, new SandboxException(ErrorReason.SecurityViolation,
                    $"the worker of plugin {plugin.Id} broke the worker protocol (unexpected output on stdout)", ErrorMetadata.For(plugin.Id)), crashed: false);
            }
        });
    }

    private void LogWorkerLine(string pluginId, string line)
    {
        try
        {
            using var document = JsonDocument.Parse(line);
            var root = document.RootElement;
            var level = root.TryGetProperty("level", out var l) ? l.GetString() : "info";
            var source = root.TryGetProperty("source", out var s) ? s.GetString() : "worker";
            var message = root.TryGetProperty("message", out var m) ? m.GetString() : line;
            logger.Log(level switch
            {
                "trace" => LogLevel.Trace,
                "debug" => LogLevel.Debug,
                "warning" => LogLevel.Warning,
                "error" => LogLevel.Error,
                _ => LogLevel.Information,
            }, "[{PluginId}] {Source}: {Message}", pluginId, source, message);
        }
        catch (JsonException)
        {
            logger.LogInformation("[{PluginId}] worker: {Line}", pluginId, line);
        }
    }

    private static void UpdatePeak(ManagedPlugin plugin, long memory)
    {
        long peak;
        do
        {
            peak = Interlocked.Read(ref plugin.PeakMemoryBytes);
            if (memory <= peak) return;
        }
        while (Interlocked.CompareExchange(ref plugin.PeakMemoryBytes, memory, peak) != peak);
    }

    private static SandboxException FaultToError(string pluginId, WorkerV1.Fault fault)
    {
        var reason = ErrorReasons.TryParse(fault.Reason, out var parsed) ? parsed : ErrorReason.PluginCrashed;
        var metadata = new Dictionary<string, string>(fault.Metadata) { ["plugin_id"] = pluginId };
        return new SandboxException(reason, fault.Message, metadata);
    }

    private static SandboxException WithPluginId(SandboxException error, string pluginId)
    {
        if (error.Metadata.ContainsKey("plugin_id") || pluginId.Length == 0) return error;
        var metadata = new Dictionary<string, string>(error.Metadata) { ["plugin_id"] = pluginId };
        return new SandboxException(error.Reason, error.Message, metadata, error.InnerException);
    }

    private static V1.Violation Violation(SandboxException cause)
    {
        var violation = new V1.Violation { Reason = cause.Reason.WireName(), Message = cause.Message };
        foreach (var (key, value) in cause.Metadata) violation.Metadata[key] = value;
        return violation;
    }

    private static CleanupIssue Issue(CleanupIssueKind kind, string detail) => new() { Kind = kind, Detail = detail };

    internal static void CreatePrivateDirectory(string path)
    {
        Directory.CreateDirectory(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
    }

    private void TryDeleteDirectory(string path)
    {
        try
        {
            if (Directory.Exists(path)) Directory.Delete(path, recursive: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            logger.LogWarning("could not remove {Path}: {Message}", path, e.Message);
        }
    }
}
