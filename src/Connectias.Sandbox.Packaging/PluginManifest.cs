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
    /// <summary>What the manifest asks for in <c>resource_limits</c>; the policy caps each value.</summary>
    public ResourceLimits ResourceLimits { get; init; } = ResourceLimits.Defaults;

    /// <summary>Null when the manifest declares no <c>commands</c>: then every command reaches the plugin.</summary>
    public IReadOnlyList<PluginCommand>? Commands { get; init; }

    public IReadOnlyList<string> Dependencies { get; init; } = [];

    /// <summary>The author's defaults for <c>ctx.config</c>; the policy's <c>config</c> is merged over it.</summary>
    public PluginConfig Config { get; init; } = PluginConfig.Empty;
}

public sealed record PluginCommand(string Name, string? Description);
