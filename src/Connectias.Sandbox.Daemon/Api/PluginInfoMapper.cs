using Connectias.Sandbox.Contracts;
using Connectias.Sandbox.Daemon.Lifecycle;
using Connectias.Sandbox.Daemon.Network;
using Connectias.Sandbox.V1;
using Google.Protobuf.WellKnownTypes;

namespace Connectias.Sandbox.Daemon.Api;

/// <summary>A plugin as the public API shows it (SPEC §4 PluginInfo).</summary>
internal static class PluginInfoMapper
{
    public static PluginInfo Describe(ManagedPlugin plugin)
    {
        var manifest = plugin.Manifest;
        var info = new PluginInfo
        {
            PluginId = plugin.Id,
            Name = manifest.Name,
            Version = manifest.Version.ToString(),
            Author = manifest.Author ?? "",
            Description = manifest.Description ?? "",
            Limits = plugin.Limits.ToProto(),
            SignerFingerprint = plugin.Signer.Fingerprint ?? "",
            LoadedAt = Timestamp.FromDateTime(plugin.LoadedAt),
        };
        lock (plugin.Sync)
        {
            info.State = plugin.State;
            info.StateReason = plugin.StateReason;
            info.StateMessage = plugin.StateMessage;
            info.Restarts = plugin.Restarts;
            info.Pid = plugin.State == PluginState.Ready && plugin.Current is { } current ? current.WorkerPid : 0;
        }

        info.GrantedPermissions.AddRange(manifest.Permissions.Select(p => p.WireName()));
        info.Dependencies.AddRange(manifest.Dependencies);
        if (manifest.Commands is { } commands) info.Commands.AddRange(commands.Select(c => new CommandInfo { Name = c.Name, Description = c.Description ?? "" }));
        info.AllowedHosts.AddRange(AddressRules.EffectiveAllowList(manifest.AllowedHosts, plugin.Grant.AllowedHosts));
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
