using System.Collections.Concurrent;
using System.Net.Sockets;
using Connectias.Sandbox.Runtime;
using Connectias.Sandbox.Worker.V1;
using Connectias.Sandbox.WorkerProtocol;
using Google.Protobuf;

namespace Connectias.Sandbox.Worker;

/// <summary>
/// The worker's side of its one connection (worker.proto). Frames are taken as they come: Load, Compile, Execute and
/// Cleanup join the turns, which run one at a time in arrival order (a Wasmtime store is single-threaded and SPEC §2
/// promises plugins arrival order); GetStatus, Cancel and BrokerReply are handled when read. The reading thread runs
/// the turns itself, each after reading every frame already sent (so a Cancel right behind its call still counts):
/// no hand-off between threads per call. A plugin that may use the network needs the reading thread free during a
/// call (its http_request waits for a BrokerReply), so its Load switches the session to a second thread for turns.
/// Threads block in the kernel while nothing happens. Failures come back as a Fault in the reply, fatal when the
/// supervisor must terminate the plugin.
/// </summary>
internal sealed class WorkerSession(Socket connection, WorkerState state)
{
    private readonly NetworkStream _stream = new(connection, ownsSocket: true);
    private readonly Lock _writeLock = new();
    private readonly Queue<WorkerRequest> _turns = new(); // run by the reading thread
    private BlockingCollection<WorkerRequest>? _turnsThread; // once a networked plugin loads: run by their own thread
    private readonly ConcurrentDictionary<ulong, bool> _cancelled = new();
    private FrameNetworkBroker? _broker;
    private CompiledModule? _compiled;
    private bool _cleanedUp;

    /// <summary>Serves the connection until the supervisor closes it.</summary>
    public void Run()
    {
        _broker = new FrameNetworkBroker(Send);
        var reads = new FrameSource(connection);
        try
        {
            while (true)
            {
                if (_turnsThread is null && _turns.Count > 0 && !reads.DataWaiting)
                {
                    RunTurn(_turns.Dequeue());
                    continue;
                }

                if (WorkerFrames.Read(reads, WorkerRequest.Parser) is not { } request) break;
                Take(request);
            }

            state.Log.Worker("info", "the supervisor closed the connection; exiting");
        }
        catch (WorkerProtocolException e)
        {
            state.Log.Worker("error", $"the supervisor broke the worker protocol ({e.Message}); exiting");
        }
        catch (Exception e) when (e is IOException or SocketException)
        {
            state.Log.Worker("warning", $"the connection to the supervisor failed ({e.Message}); exiting");
        }

        _broker.Close();
        _turnsThread?.CompleteAdding();
    }

    private void Take(WorkerRequest request)
    {
        switch (request.BodyCase)
        {
            case WorkerRequest.BodyOneofCase.Load or WorkerRequest.BodyOneofCase.Compile or WorkerRequest.BodyOneofCase.Execute or WorkerRequest.BodyOneofCase.Cleanup:
                if (_turnsThread is null && request.BodyCase == WorkerRequest.BodyOneofCase.Load && request.Load.NetworkBroker) StartTurnsThread();
                if (_turnsThread is not null) _turnsThread.Add(request);
                else _turns.Enqueue(request);
                break;
            case WorkerRequest.BodyOneofCase.Cancel:
                _cancelled[request.Cancel.TargetId] = true;
                break;
            case WorkerRequest.BodyOneofCase.Status:
                // From figures kept after each turn, so it never waits behind a running call.
                Send(new WorkerReply { Id = request.Id, Status = state.Status });
                break;
            case WorkerRequest.BodyOneofCase.BrokerReply:
                _broker!.Answer(request.Id, request.BrokerReply);
                break;
            default:
                throw new WorkerProtocolException($"a request of no known kind (id {request.Id})");
        }
    }

    /// <summary>From now on turns run on their own thread, the ones already waiting first.</summary>
    private void StartTurnsThread()
    {
        var turns = new BlockingCollection<WorkerRequest>();
        while (_turns.TryDequeue(out var waiting)) turns.Add(waiting);
        _turnsThread = turns;
        new Thread(() =>
        {
            foreach (var request in turns.GetConsumingEnumerable()) RunTurn(request);
        })
        {
            IsBackground = true,
            Name = "plugin-turns",
        }.Start();
    }

    private void RunTurn(WorkerRequest request)
    {
        var reply = request.BodyCase switch
        {
            WorkerRequest.BodyOneofCase.Load => new WorkerReply { Load = Load(request.Load) },
            WorkerRequest.BodyOneofCase.Compile => new WorkerReply { Compile = Compile(request.Compile) },
            WorkerRequest.BodyOneofCase.Execute => new WorkerReply { Execute = Execute(request.Id, request.Execute) },
            _ => new WorkerReply { Cleanup = Cleanup(request.Cleanup) },
        };
        state.Refresh();
        reply.Id = request.Id;
        Send(reply);
    }

    private void Send(WorkerReply reply)
    {
        var frame = WorkerFrames.Encode(reply);
        lock (_writeLock)
        {
            try
            {
                _stream.Write(frame);
            }
            catch (Exception e) when (e is IOException or ObjectDisposedException)
            {
                // The supervisor is gone; the reading thread sees the end and the process exits.
            }
        }
    }

    private CompileResponse Compile(CompileRequest request)
    {
        try
        {
            _compiled?.Dispose();
            _compiled = null;
            CapMemory(request.MemoryCapBytes);
            _compiled = state.Engine.Compile(state.Log.PluginId.Length > 0 ? state.Log.PluginId : "module", request.Module.Span);
            return new CompileResponse { Compiled = UnsafeByteOperations.UnsafeWrap(_compiled.Serialize()) };
        }
        catch (SandboxException e)
        {
            return new CompileResponse { Fault = WorkerFaults.ToFault(e) };
        }
        catch (OutOfMemoryException)
        {
            return new CompileResponse { Fault = WorkerFaults.ToFault(OutOfMemory()) };
        }
    }

    private LoadResponse Load(LoadRequest request)
    {
        try
        {
            if (state.Plugin is not null) throw new SandboxException(ErrorReason.AlreadyLoaded, "this worker already hosts a plugin");
            state.Log.PluginId = request.PluginId;
            CapMemory(request.MemoryCapBytes);
            var plugin = PluginInstance.Load(state.Engine, ToSetup(request, CompiledFor(request)));
            state.Plugin = plugin;
            var code = request.Precompiled.IsEmpty ? request.UseCompiled ? "compiled just before" : "compiled" : "compiled code from the cache";
            state.Log.Worker("info", $"plugin {request.PluginId} {request.PluginVersion} loaded ({code}; {plugin.MemoryBytes} bytes of memory)");
            return new LoadResponse { MemoryBytes = (ulong)plugin.MemoryBytes };
        }
        catch (SandboxException e)
        {
            state.Log.Worker("warning", $"load failed: {e.Reason.WireName()}: {e.Message}");
            return new LoadResponse { Fault = WorkerFaults.ToFault(e) };
        }
        catch (OutOfMemoryException)
        {
            return new LoadResponse { Fault = WorkerFaults.ToFault(OutOfMemory()) };
        }
    }

    /// <summary>What .NET's allocator failing under the worker's cap means for a compile or a load.</summary>
    private static SandboxException OutOfMemory() => new(ErrorReason.ResourceExhausted,
        "the worker ran out of memory under its cap (RLIMIT_DATA: memory_bytes plus the daemon's allowance) while compiling or loading the module");

    private void CapMemory(ulong capBytes)
    {
        try
        {
            var cap = Lockdown.ProcessLimits.Lower(capBytes);
            if (capBytes > 0) state.Log.Worker("info", $"memory cap (RLIMIT_DATA): {cap} bytes");
        }
        catch (InvalidOperationException e)
        {
            throw new SandboxException(ErrorReason.ResourceExhausted, $"cannot cap the worker's memory: {e.Message}");
        }
    }

    /// <summary>The module a Load uses when it is not to compile its own: the preceding Compile's, or the supervisor's cached code.</summary>
    private CompiledModule? CompiledFor(LoadRequest request)
    {
        if (request.UseCompiled)
        {
            var compiled = _compiled ?? throw new SandboxException(ErrorReason.InitFailed, "the Load asks for the compiled module, but no Compile came before it");
            _compiled = null; // the plugin owns it now
            return compiled;
        }

        if (request.Precompiled.IsEmpty) return null;
        return state.Engine.Deserialize(request.PluginId, request.Precompiled.Span)
               ?? throw new SandboxException(ErrorReason.InitFailed, "the cached compiled module does not fit this worker's engine",
                   ErrorMetadata.For(request.PluginId, (WorkerFaults.PrecompiledRefusedKey, "true")));
    }

    private ExecuteResponse Execute(ulong id, ExecuteRequest request)
    {
        if (!_cancelled.IsEmpty && ForgetCancelsUpTo(id)) return new ExecuteResponse { Skipped = true };
        TimeSpan? deadline = null;
        if (request.DeadlineUnixMs > 0)
        {
            deadline = DateTimeOffset.FromUnixTimeMilliseconds((long)Math.Min(request.DeadlineUnixMs, long.MaxValue)) - DateTimeOffset.UtcNow;
            if (deadline <= TimeSpan.Zero) return new ExecuteResponse { Skipped = true, DeadlinePassed = true };
        }

        try
        {
            var plugin = state.Plugin ?? throw new SandboxException(ErrorReason.PluginNotFound, "no plugin is loaded in this worker");
            // A call that reaches its turn after the unload's cleanup (it waited longer than UnloadTimeoutMs) does not run.
            if (_cleanedUp) throw new SandboxException(ErrorReason.PluginNotFound, $"plugin {plugin.PluginId} was unloaded before this call's turn");
            var result = plugin.Execute(request.Command, request.Args.Span, deadline);
            return new ExecuteResponse
            {
                Output = UnsafeByteOperations.UnsafeWrap(result.Output),
                FuelConsumed = (ulong)result.FuelConsumed,
                DurationUs = (ulong)result.DurationMicroseconds,
                MemoryBytes = (ulong)result.MemoryBytes,
            };
        }
        catch (SandboxException e)
        {
            return new ExecuteResponse { Fault = WorkerFaults.ToFault(e), MemoryBytes = (ulong)(state.Plugin?.MemoryBytes ?? 0) };
        }
    }

    /// <summary>True when the call <paramref name="id"/> was cancelled; cancels of earlier calls (which ran) are forgotten.</summary>
    private bool ForgetCancelsUpTo(ulong id)
    {
        foreach (var cancelled in _cancelled.Keys.Where(k => k < id)) _cancelled.TryRemove(cancelled, out _);
        return _cancelled.TryRemove(id, out _);
    }

    private CleanupResponse Cleanup(CleanupRequest request)
    {
        try
        {
            if (state.Plugin is not { } plugin) return new CleanupResponse();
            _cleanedUp = true;
            var (called, code) = plugin.Cleanup(request.TimeoutMs > 0 ? TimeSpan.FromMilliseconds(request.TimeoutMs) : null);
            state.Log.Worker("info", called ? $"plugin_cleanup returned {code}" : "plugin has no plugin_cleanup");
            return new CleanupResponse { Called = called, Code = code };
        }
        catch (SandboxException e)
        {
            return new CleanupResponse { Called = true, Fault = WorkerFaults.ToFault(e) };
        }
    }

    private PluginSetup ToSetup(LoadRequest request, CompiledModule? compiled) => new()
    {
        PluginId = request.PluginId,
        Version = request.PluginVersion,
        Module = request.Module.Memory,
        Compiled = compiled,
        Permissions = request.GrantedPermissions.Select(name => Permissions.TryParse(name, out var p)
            ? p
            : throw new SandboxException(ErrorReason.CorruptedData, $"unknown permission '{name}'")).ToHashSet(),
        Limits = request.Limits.ToResourceLimits(),
        Budgets = request.Budgets.ToPluginBudgets(),
        ContextJson = request.ContextJson.IsEmpty ? null : request.ContextJson.ToByteArray(),
        StorageDirectory = string.IsNullOrEmpty(request.StorageDir) ? null : request.StorageDir,
        DeclaredCommands = request.CommandsDeclared ? request.DeclaredCommands.ToList() : null,
        Log = state.Log,
        NetworkBroker = request.NetworkBroker ? _broker : null, // null unless the supervisor answers BrokerCalls
    };
}

/// <summary>The process-wide state of a worker: its engine, its one plugin, and the figures GetStatus reports.</summary>
internal sealed class WorkerState(WorkerLog log)
{
    public WasmEngine Engine { get; } = new();
    public WorkerLog Log { get; } = log;
    public PluginInstance? Plugin { get; set; }
    public GetStatusResponse Status { get; private set; } = new();

    public void Refresh()
    {
        if (Plugin is not { } plugin) return;
        Status = new GetStatusResponse
        {
            MemoryBytes = (ulong)plugin.MemoryBytes,
            PeakMemoryBytes = (ulong)plugin.PeakMemoryBytes,
            FuelConsumedTotal = (ulong)plugin.FuelConsumedTotal,
            Calls = (ulong)plugin.Calls,
        };
    }
}
