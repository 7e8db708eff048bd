using Connectias.Sandbox.Daemon.Events;
using Connectias.Sandbox.Daemon.Lifecycle;
using Connectias.Sandbox.Daemon.Plugins;
using Connectias.Sandbox.V1;
using Grpc.Core;

namespace Connectias.Sandbox.Daemon.Api;

/// <summary>The public API of SPEC §4. Errors travel as SandboxException and become statuses in <see cref="ErrorInterceptor"/>.</summary>
internal sealed class PluginHostService(PluginLoader loader, PluginUnloader unloader, PluginCalls calls, PluginRegistry registry, EventHub events)
    : PluginHost.PluginHostBase
{
    public override async Task<LoadPluginResponse> LoadPlugin(LoadPluginRequest request, ServerCallContext context) =>
        new() { Plugin = PluginInfoMapper.Describe(await loader.LoadAsync(request, context.CancellationToken, overNetwork: OverNetwork(context))) };

    /// <summary>The request came over the TCP listener rather than the Unix socket.</summary>
    private static bool OverNetwork(ServerCallContext context) =>
        context.GetHttpContext().Connection.LocalIpAddress is not null;

    public override Task<ExecuteResponse> Execute(ExecuteRequest request, ServerCallContext context) =>
        calls.ExecuteAsync(request, context.Deadline == DateTime.MaxValue ? null : context.Deadline, context.CancellationToken);

    public override async Task<UnloadPluginResponse> UnloadPlugin(UnloadPluginRequest request, ServerCallContext context) =>
        new() { Report = await unloader.UnloadAsync(request.PluginId, request.Cascade) };

    public override Task<ListPluginsResponse> ListPlugins(ListPluginsRequest request, ServerCallContext context)
    {
        var response = new ListPluginsResponse();
        response.Plugins.AddRange(registry.All().Select(PluginInfoMapper.Describe));
        return Task.FromResult(response);
    }

    public override Task<PluginInfo> GetPlugin(GetPluginRequest request, ServerCallContext context) =>
        Task.FromResult(PluginInfoMapper.Describe(registry.Find(request.PluginId)));

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
}
