using Connectias.Sandbox.Audit;
using Connectias.Sandbox.Daemon.Events;
using Connectias.Sandbox.Daemon.Hosting;
using Connectias.Sandbox.Daemon.Lifecycle;
using Connectias.Sandbox.Daemon.Policy;
using Connectias.Sandbox.Daemon.Supervision;
using Connectias.Sandbox.Daemon.Telemetry;
using Connectias.Sandbox.Packaging;
using Connectias.Sandbox.V1;

namespace Connectias.Sandbox.Daemon.Plugins;

/// <summary>
/// LoadPlugin: read and check the package (hygiene, manifest, versions, signature), check the policy grants
/// what it asks for, register it, and have the supervisor start its worker. Every refusal is audited as
/// LOAD_REJECTED and leaves nothing registered. Under <c>audit_failure: refuse</c> a load is refused while the audit
/// log cannot be written, and a load whose own records could not be written is undone: no plugin runs unaudited.
/// </summary>
internal sealed class PluginLoader(
    DaemonOptions options,
    AdminPolicy policy,
    PluginRegistry registry,
    PluginSupervisor supervisor,
    PluginUpgrader upgrader,
    PluginUnloader unloader,
    AuditTrail audit,
    DaemonMetrics metrics,
    ILogger<PluginLoader> logger)
{
    private readonly PackageReader _reader = new();

    /// <summary>
    /// Loads the package <paramref name="request"/> carries or names. <paramref name="overNetwork"/>: the request came
    /// over TCP, whose callers may not name files on the daemon's machine.
    /// </summary>
    public async Task<ManagedPlugin> LoadAsync(LoadPluginRequest request, CancellationToken cancellation, bool overNetwork = false)
    {
        var source = request.SourceCase == LoadPluginRequest.SourceOneofCase.Path ? request.Path : "(bytes)";
        using var span = DaemonTracing.StartLoad(source);
        ManagedPlugin? plugin = null;
        try
        {
            if (overNetwork && request.SourceCase == LoadPluginRequest.SourceOneofCase.Path)
            {
                throw new SandboxException(ErrorReason.PermissionDenied,
                    "LoadPlugin by path is taken only on the daemon's Unix socket (a path names a file on the daemon's machine); over TCP, send the package bytes");
            }

            plugin = Verify(request);
            span?.SetTag("plugin_id", plugin.Id);
            audit.EnsureWritable(plugin.Id);
            var lostBefore = audit.LostRecords;
            if (request.Replace && LiveOf(plugin.Id) is { } current)
            {
                var upgraded = await upgrader.UpgradeAsync(current, plugin, source, cancellation);
                plugin = null; // never registered on its own: nothing to withdraw if what follows fails
                RecordGrant(upgraded);
                metrics.Loaded(upgraded.Id);
                return upgraded;
            }

            registry.Register(plugin);
            var registered = plugin;
            var manifest = plugin.Manifest;
            await supervisor.StartAsync(plugin, new Transition(PluginState.Ready)
            {
                AuditDetails = json =>
                {
                    json.WriteString("version", manifest.Version.ToString());
                    json.WriteString("source", source);
                    json.WriteString("signer", registered.Signer.Fingerprint ?? "unsigned");
                    json.WriteNumber("pid", registered.Current!.WorkerPid);
                    json.WriteString("sandbox", supervisor.UsesBubblewrap ? "bubblewrap" : "process");
                },
            }, cancellation);
            RecordGrant(plugin);
            await UndoUnlessAuditedAsync(plugin, lostBefore);
            metrics.Loaded(plugin.Id);
            logger.LogInformation("loaded {PluginId} {Version} (pid {Pid}, signer {Signer})", plugin.Id, manifest.Version, plugin.Current!.WorkerPid, plugin.Signer.Fingerprint ?? "unsigned");
            return plugin;
        }
        catch (Exception failure)
        {
            // Whatever ended the load (a refusal, the caller going away, a state directory that cannot be written),
            // the plugin does not stay LOADING: it is withdrawn and the refusal audited.
            var e = failure as SandboxException ?? failure switch
            {
                OperationCanceledException => new SandboxException(ErrorReason.Timeout, "the load was cancelled: its caller went away or its deadline passed", null, failure),
                _ => new SandboxException(ErrorReason.InitFailed, $"the load failed in the daemon: {failure.Message}", null, failure),
            };
            var id = plugin?.Id ?? (e.Metadata.TryGetValue("plugin_id", out var known) ? known : "");
            if (plugin is not null) registry.Withdraw(plugin);
            audit.Record(AuditEvents.LoadRejected, id, json =>
            {
                json.WriteString("reason", e.Reason.WireName());
                AuditTrail.WriteMessage(json, e.Message);
                json.WriteString("source", source);
            });
            metrics.LoadRefused(e.Reason);
            DaemonTracing.Failed(span, e);
            logger.LogWarning("load of {Source} rejected: {Reason}: {Message}", source, e.Reason.WireName(), e.Message);
            throw ErrorMetadata.WithPluginId(e, id);
        }
    }

    /// <summary>Under <c>audit_failure: refuse</c>, a plugin whose load could not be audited is unloaded again and the load refused.</summary>
    private async Task UndoUnlessAuditedAsync(ManagedPlugin plugin, long lostBefore)
    {
        try
        {
            audit.EnsureNoneLostSince(lostBefore, plugin.Id);
        }
        catch (SandboxException)
        {
            await unloader.UndoLoadAsync(plugin);
            throw;
        }
    }

    private void RecordGrant(ManagedPlugin plugin) => audit.Record(AuditEvents.PermissionGrant, plugin.Id, json =>
    {
        json.WriteStartArray("permissions");
        foreach (var permission in plugin.Manifest.Permissions) json.WriteStringValue(permission.WireName());
        json.WriteEndArray();
    });

    /// <summary>The READY plugin of that id a replace upgrades; one still loading is ALREADY_LOADED.</summary>
    private ManagedPlugin? LiveOf(string pluginId)
    {
        ManagedPlugin current;
        try
        {
            current = registry.Find(pluginId);
        }
        catch (SandboxException e) when (e.Reason == ErrorReason.PluginNotFound)
        {
            return null;
        }

        return current.State switch
        {
            PluginState.Ready => current,
            PluginState.Loading => throw new SandboxException(ErrorReason.AlreadyLoaded,
                $"plugin {pluginId} is still loading (version {current.Manifest.Version}); replace it once it is READY", ErrorMetadata.For(pluginId)),
            _ => null, // terminated, crashed or unloaded: an ordinary load takes its place
        };
    }

    private PluginPackage ReadFile(string path)
    {
        using var file = PackageFile.OpenRegular(path);
        return _reader.Read(file);
    }

    /// <summary>The package's checks and the policy's, in the SPEC's order; a plugin ready to register.</summary>
    private ManagedPlugin Verify(LoadPluginRequest request)
    {
        var package = request.SourceCase switch
        {
            LoadPluginRequest.SourceOneofCase.Path => ReadFile(request.Path),
            LoadPluginRequest.SourceOneofCase.Package => _reader.Read(request.Package.Memory),
            _ => throw new SandboxException(ErrorReason.CorruptedData, "LoadPlugin needs a path or the package bytes"),
        };
        var manifest = package.Manifest;
        ManifestParser.CheckCompatibility(manifest, SemanticVersion.Parse(CoreVersion.Current), CoreVersion.SupportedAbiVersions);
        var signer = SignatureVerifier.Verify(package, TrustStore.Load(options.ResolvedTrustDir), options.AllowUnsigned);
        var grant = policy.For(manifest.Id);
        if (manifest.Permissions.Where(p => !grant.Permissions.Contains(p)).Select(p => (Permission?)p).FirstOrDefault() is { } missing)
        {
            throw new SandboxException(ErrorReason.PermissionDenied,
                $"plugin {manifest.Id} asks for the '{missing.WireName()}' permission, which the policy ({policy.Source}) does not grant it",
                ErrorMetadata.For(manifest.Id, ("permission", missing.WireName())));
        }

        // Only the module outlives this call: the rest of the package's bytes are released with it.
        return new ManagedPlugin(manifest, package.Module.ToArray(), signer, grant, ResourceLimits.Effective(manifest.ResourceLimits, grant.Limits));
    }
}
