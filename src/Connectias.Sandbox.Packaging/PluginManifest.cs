namespace Connectias.Sandbox.Packaging;

/// <summary>A validated <c>plugin.json</c> (SPEC §1). Construct it with <see cref="ManifestParser"/>.</summary>
public sealed record PluginManifest
{
    public const string FileName = "plugin.json";
    public const string DefaultEntryPoint = "plugin.wasm";

    public required string Id { get; init; }
    public required string Name { get; init; }
    public required SemanticVersion Version { get; init; }
    public string? Author { get; init; }
    public string? Description { get; init; }
    public int AbiVersion { get; init; } = 1;
    public SemanticVersion? MinCoreVersion { get; init; }
    public SemanticVersion? MaxCoreVersion { get; init; }
    public string EntryPoint { get; init; } = DefaultEntryPoint;
    public IReadOnlyList<Permission> Permissions { get; init; } = [];
    public IReadOnlyList<HostPattern> AllowedHosts { get; init; } = [];
    public RequestedLimits ResourceLimits { get; init; } = new();

    /// <summary>Null when the manifest declares no <c>commands</c>: then every command reaches the plugin.</summary>
    public IReadOnlyList<PluginCommand>? Commands { get; init; }

    public IReadOnlyList<string> Dependencies { get; init; } = [];
}

public sealed record PluginCommand(string Name, string? Description);

/// <summary>
/// What a manifest asks for in <c>resource_limits</c>; the administrator's policy caps each value.
/// </summary>
public sealed record RequestedLimits
{
    public long MemoryBytes { get; init; } = LimitDefaults.MemoryBytes;
    public long FuelPerCall { get; init; } = LimitDefaults.FuelPerCall;
    public long TimeoutMs { get; init; } = LimitDefaults.TimeoutMs;
    public long StorageBytes { get; init; } = LimitDefaults.StorageBytes;
}
