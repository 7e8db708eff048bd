using Connectias.Sandbox.Daemon.Hosting;
using Connectias.Sandbox.Daemon.Lifecycle;
using Connectias.Sandbox.Daemon.Workers;
using Connectias.Sandbox.WorkerProtocol;
using Google.Protobuf;
using WorkerV1 = Connectias.Sandbox.Worker.V1;

namespace Connectias.Sandbox.Daemon.Supervision;

/// <summary>
/// Loads a plugin into a worker that handed shake: with compiled code from the cache when there is an authenticated
/// entry for the module and the worker's engine, otherwise by a Compile whose result goes into the cache before any
/// of the plugin's code runs (a worker's reply is taken as compiled only while it has run nothing of the plugin's),
/// then the Load itself. Throws the SPEC error of a failed load.
/// </summary>
internal sealed class WorkerLoader(DaemonOptions options, CompiledModuleCache cache, ILogger<WorkerLoader> logger)
{
    public async Task<WorkerV1.LoadResponse> LoadAsync(ManagedPlugin plugin, WorkerHandle worker, string? storageDirectory, bool networkBroker, CancellationToken cancellation)
    {
        var module = plugin.Module ?? throw new SandboxException(ErrorReason.InitFailed, $"plugin {plugin.Id} no longer holds its module", ErrorMetadata.For(plugin.Id));
        var timeout = TimeSpan.FromMilliseconds(plugin.Limits.TimeoutMs) + options.CallGrace + options.WorkerLoadGrace;
        var load = Request(plugin, storageDirectory, networkBroker);
        // The same cap the resource monitor holds the worker's RSS to, made the kernel's from before the compile on.
        load.MemoryCapBytes = (ulong)options.WorkerMemoryCapBytes(plugin.Limits.MemoryBytes);

        var key = ModuleKey.For(worker.Engine, module.Span);
        if (cache.TryGet(key) is { } compiled)
        {
            load.Precompiled = UnsafeByteOperations.UnsafeWrap(compiled);
            var response = await worker.Connection.LoadAsync(load, timeout, cancellation);
            if (response.Fault?.Metadata.ContainsKey(WorkerFaults.PrecompiledRefusedKey) != true) return response;
            // Authentic but not for this engine after all (a Wasmtime build with the same version string): compile instead.
            logger.LogWarning("compiled-module cache: the worker of {PluginId} refused a cached module; compiling it", plugin.Id);
            cache.Remove(key);
            load.Precompiled = ByteString.Empty;
        }

        if (!cache.Enabled)
        {
            load.Module = UnsafeByteOperations.UnsafeWrap(module);
            return await worker.Connection.LoadAsync(load, timeout, cancellation);
        }

        var compile = await worker.Connection.CompileAsync(new WorkerV1.CompileRequest { Module = UnsafeByteOperations.UnsafeWrap(module), MemoryCapBytes = load.MemoryCapBytes }, timeout, cancellation);
        if (compile.Fault is { } fault) throw WorkerFaults.ToError(fault, plugin.Id);
        load.UseCompiled = true;
        var loaded = await worker.Connection.LoadAsync(load, timeout, cancellation);
        // Kept only for a module that loads (one the checks refuse would only take room); the code itself was
        // received before any of the plugin's code ran in the worker.
        if (loaded.Fault is null) cache.Put(key, compile.Compiled.Span);
        return loaded;
    }

    private WorkerV1.LoadRequest Request(ManagedPlugin plugin, string? storageDirectory, bool networkBroker)
    {
        var load = new WorkerV1.LoadRequest
        {
            PluginId = plugin.Id,
            PluginVersion = plugin.Manifest.Version.ToString(),
            Limits = plugin.Limits.ToWorkerLimits(),
            ContextJson = ByteString.CopyFrom(PluginContextJson.Build(plugin.Id, plugin.Manifest.Version.ToString(), plugin.Manifest.Permissions, plugin.Limits,
                plugin.Manifest.Config.MergedWith(plugin.Grant.Config))),
            StorageDir = storageDirectory ?? "",
            CommandsDeclared = plugin.Manifest.Commands is not null,
            NetworkBroker = networkBroker,
            Budgets = options.PluginBudgets.ToWorkerBudgets(),
        };
        load.GrantedPermissions.AddRange(plugin.Manifest.Permissions.Select(p => p.WireName()));
        if (plugin.Manifest.Commands is { } commands) load.DeclaredCommands.AddRange(commands.Select(c => c.Name));
        return load;
    }
}
