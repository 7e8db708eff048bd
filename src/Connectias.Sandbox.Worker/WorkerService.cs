using Connectias.Sandbox.Runtime;
using Connectias.Sandbox.Worker.V1;
using Connectias.Sandbox.WorkerProtocol;
using Google.Protobuf;
using Grpc.Core;

namespace Connectias.Sandbox.Worker;

/// <summary>
/// The internal service: one plugin per process. Calls run one at a time (a Wasmtime store is
/// single-threaded and SPEC §2 promises plugins arrival order); failures come back as a Fault in the
/// response, with fatal=true when the supervisor must terminate the plugin.
/// </summary>
internal sealed class WorkerService(WorkerState state) : PluginWorker.PluginWorkerBase
{
    public override async Task<LoadResponse> Load(LoadRequest request, ServerCallContext context)
    {
        await state.Gate.WaitAsync(context.CancellationToken);
        try
        {
            if (state.Plugin is not null)
                return new LoadResponse { Fault = WorkerFaults.ToFault(new SandboxException(ErrorReason.AlreadyLoaded, "this worker already hosts a plugin")) };
            state.Log.PluginId = request.PluginId;
            if (request.NetworkBroker) await state.Broker.WaitUntilAttachedAsync(TimeSpan.FromSeconds(5));
            var plugin = PluginInstance.Load(state.Engine, ToSetup(request, state.Log, request.NetworkBroker && state.Broker.IsAttached ? state.Broker : null));
            state.Plugin = plugin;
            state.Refresh();
            state.Log.Worker("info", $"plugin {request.PluginId} {request.PluginVersion} loaded ({plugin.MemoryBytes} bytes of memory)");
            return new LoadResponse { MemoryBytes = (ulong)plugin.MemoryBytes };
        }
        catch (SandboxException e)
        {
            state.Log.Worker("warning", $"load failed: {e.Reason.WireName()}: {e.Message}");
            return new LoadResponse { Fault = WorkerFaults.ToFault(e) };
        }
        finally
        {
            state.Gate.Release();
        }
    }

    public override async Task<ExecuteResponse> Execute(ExecuteRequest request, ServerCallContext context)
    {
        await state.Gate.WaitAsync(context.CancellationToken);
        try
        {
            var plugin = state.Plugin ?? throw new SandboxException(ErrorReason.PluginNotFound, "no plugin is loaded in this worker");
            var result = plugin.Execute(request.Command, request.Args.Span, Deadline(request.DeadlineMs, context));
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
        finally
        {
            state.Refresh();
            state.Gate.Release();
        }
    }

    public override async Task<CleanupResponse> Cleanup(CleanupRequest request, ServerCallContext context)
    {
        await state.Gate.WaitAsync(context.CancellationToken);
        try
        {
            if (state.Plugin is not { } plugin) return new CleanupResponse();
            var (called, code) = plugin.Cleanup(request.TimeoutMs > 0 ? TimeSpan.FromMilliseconds(request.TimeoutMs) : null);
            state.Log.Worker("info", called ? $"plugin_cleanup returned {code}" : "plugin has no plugin_cleanup");
            return new CleanupResponse { Called = called, Code = code };
        }
        catch (SandboxException e)
        {
            return new CleanupResponse { Called = true, Fault = WorkerFaults.ToFault(e) };
        }
        finally
        {
            state.Refresh();
            state.Gate.Release();
        }
    }

    public override Task Broker(IAsyncStreamReader<BrokerReply> requestStream, IServerStreamWriter<BrokerCall> responseStream, ServerCallContext context) =>
        state.Broker.AttachAsync(requestStream, responseStream, context.CancellationToken);

    /// <summary>Answers from figures kept after each call, so it never waits behind a running call.</summary>
    public override Task<GetStatusResponse> GetStatus(GetStatusRequest request, ServerCallContext context) =>
        Task.FromResult(state.Status);

    private static TimeSpan? Deadline(ulong requestedMs, ServerCallContext context)
    {
        TimeSpan? deadline = requestedMs > 0 ? TimeSpan.FromMilliseconds(requestedMs) : null;
        if (context.Deadline != DateTime.MaxValue)
        {
            var transport = context.Deadline - DateTime.UtcNow;
            if (deadline is null || transport < deadline) deadline = transport < TimeSpan.Zero ? TimeSpan.Zero : transport;
        }

        return deadline;
    }

    private static PluginSetup ToSetup(LoadRequest request, WorkerLog log, INetworkBroker? broker) => new()
    {
        PluginId = request.PluginId,
        Version = request.PluginVersion,
        Module = request.Module.Memory,
        Permissions = request.GrantedPermissions.Select(name => Permissions.TryParse(name, out var p)
            ? p
            : throw new SandboxException(ErrorReason.CorruptedData, $"unknown permission '{name}'")).ToHashSet(),
        Limits = request.Limits.ToResourceLimits(),
        ContextJson = request.ContextJson.IsEmpty ? null : request.ContextJson.ToByteArray(),
        StorageDirectory = string.IsNullOrEmpty(request.StorageDir) ? null : request.StorageDir,
        DeclaredCommands = request.CommandsDeclared ? request.DeclaredCommands.ToList() : null,
        Log = log,
        NetworkBroker = broker, // null unless the supervisor opened the Broker stream
    };
}

/// <summary>The process-wide state of a worker: its engine, its one plugin, and the call gate.</summary>
internal sealed class WorkerState(WorkerLog log) : IDisposable
{
    public WasmEngine Engine { get; } = new();
    public SemaphoreSlim Gate { get; } = new(1, 1);
    public WorkerLog Log { get; } = log;
    public StreamNetworkBroker Broker { get; } = new();
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

    public void Dispose()
    {
        Plugin?.Dispose();
        Engine.Dispose();
    }
}
