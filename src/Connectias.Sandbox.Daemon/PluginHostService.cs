using Connectias.Sandbox.V1;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;

namespace Connectias.Sandbox.Daemon;

/// <summary>The public API of SPEC §4. Errors travel as SandboxException and become statuses in <see cref="ErrorInterceptor"/>.</summary>
internal sealed class PluginHostService(PluginSupervisor supervisor, EventHub events) : PluginHost.PluginHostBase
{
    public override async Task<LoadPluginResponse> LoadPlugin(LoadPluginRequest request, ServerCallContext context) =>
        new() { Plugin = Describe(await supervisor.LoadAsync(request, context.CancellationToken)) };

    public override Task<ExecuteResponse> Execute(ExecuteRequest request, ServerCallContext context) =>
        supervisor.ExecuteAsync(request, context.Deadline == DateTime.MaxValue ? null : context.Deadline, context.CancellationToken);

    public override async Task<UnloadPluginResponse> UnloadPlugin(UnloadPluginRequest request, ServerCallContext context) =>
        new() { Report = await supervisor.UnloadAsync(request.PluginId) };

    public override Task<ListPluginsResponse> ListPlugins(ListPluginsRequest request, ServerCallContext context)
    {
        var response = new ListPluginsResponse();
        response.Plugins.AddRange(supervisor.All().Select(Describe));
        return Task.FromResult(response);
    }

    public override Task<PluginInfo> GetPlugin(GetPluginRequest request, ServerCallContext context) =>
        Task.FromResult(Describe(supervisor.Find(request.PluginId)));

    public override async Task WatchEvents(WatchEventsRequest request, IServerStreamWriter<Event> responseStream, ServerCallContext context)
    {
        var reader = events.Subscribe(request.PluginId, context.CancellationToken);
        try
        {
            await foreach (var item in reader.ReadAllAsync(context.CancellationToken)) await responseStream.WriteAsync(item);
        }
        catch (OperationCanceledException) when (context.CancellationToken.IsCancellationRequested)
        {
            // the watcher went away
        }
    }

    internal static PluginInfo Describe(ManagedPlugin plugin)
    {
        var manifest = plugin.Manifest;
        var info = new PluginInfo
        {
            PluginId = plugin.Id,
            Name = manifest.Name,
            Version = manifest.Version.ToString(),
            Author = manifest.Author ?? "",
            Description = manifest.Description ?? "",
            Limits = plugin.Limits,
            SignerFingerprint = plugin.Signer.Fingerprint ?? "",
            LoadedAt = Timestamp.FromDateTime(plugin.LoadedAt),
        };
        lock (plugin.Sync)
        {
            info.State = plugin.State;
            info.StateReason = plugin.StateReason;
            info.StateMessage = plugin.StateMessage;
            info.Restarts = plugin.Restarts;
            info.Pid = plugin.State == PluginState.Ready && plugin.Current is { } current ? current.Pid : 0;
        }

        info.GrantedPermissions.AddRange(manifest.Permissions.Select(p => p.WireName()));
        info.Dependencies.AddRange(manifest.Dependencies);
        if (manifest.Commands is { } commands) info.Commands.AddRange(commands.Select(c => new CommandInfo { Name = c.Name, Description = c.Description ?? "" }));
        info.AllowedHosts.AddRange(manifest.AllowedHosts.Where(h => plugin.Grant.AllowedHosts.Any(g => g.Text == h.Text || (g.IsWildcard && g.Port == h.Port && h.Host.EndsWith("." + g.Host, StringComparison.Ordinal))))
            .Select(h => h.Text));
        info.Usage = new PluginUsage
        {
            Calls = (ulong)Interlocked.Read(ref plugin.Calls),
            Failures = (ulong)Interlocked.Read(ref plugin.Failures),
            FuelConsumedTotal = (ulong)Interlocked.Read(ref plugin.FuelConsumedTotal),
            MemoryBytes = (ulong)Interlocked.Read(ref plugin.MemoryBytes),
            PeakMemoryBytes = (ulong)Interlocked.Read(ref plugin.PeakMemoryBytes),
            WorkerRssBytes = (ulong)Interlocked.Read(ref plugin.WorkerRssBytes),
            WorkerCpuSeconds = plugin.WorkerCpuSeconds,
        };
        if (plugin.Broker is { } broker)
        {
            info.Usage.NetworkRequests = (ulong)Interlocked.Read(ref broker.Requests);
            info.Usage.NetworkBytesSent = (ulong)Interlocked.Read(ref broker.BytesSent);
            info.Usage.NetworkBytesReceived = (ulong)Interlocked.Read(ref broker.BytesReceived);
            info.Usage.NetworkRefusals = (ulong)Interlocked.Read(ref broker.Refusals);
        }
        return info;
    }
}

/// <summary>Turns every SandboxException into the SPEC status with google.rpc.ErrorInfo, in one place.</summary>
internal sealed class ErrorInterceptor : Grpc.Core.Interceptors.Interceptor
{
    public override async Task<TResponse> UnaryServerHandler<TRequest, TResponse>(TRequest request, ServerCallContext context, UnaryServerMethod<TRequest, TResponse> continuation)
    {
        try
        {
            return await continuation(request, context);
        }
        catch (SandboxException e)
        {
            throw Contracts.ErrorStatus.ToRpcException(e);
        }
    }

    public override async Task ServerStreamingServerHandler<TRequest, TResponse>(TRequest request, IServerStreamWriter<TResponse> responseStream, ServerCallContext context, ServerStreamingServerMethod<TRequest, TResponse> continuation)
    {
        try
        {
            await continuation(request, responseStream, context);
        }
        catch (SandboxException e)
        {
            throw Contracts.ErrorStatus.ToRpcException(e);
        }
    }
}
