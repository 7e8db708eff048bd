namespace Connectias.Sandbox;

/// <summary>
/// One set of resource limits, the only limits type there is: a manifest's requests, the policy's caps
/// and a plugin's effective limits are all instances of it. Every default of the SPEC lives here; the
/// JSON names, the manifest's right to ask for a limit and the ctx JSON contents live in <see cref="Fields"/>.
/// Adding a limit: a property here, a row in <see cref="Fields"/>, a field in each proto and its mapping
/// (Contracts' <c>LimitsMapping</c>, WorkerProtocol's <c>WorkerLimitsMapping</c>), then whatever enforces it.
/// </summary>
public sealed record ResourceLimits
{
    /// <summary>What applies when neither the manifest nor the policy says anything (SPEC §1, §3, §5).</summary>
    public static readonly ResourceLimits Defaults = new();

    public long MemoryBytes { get; init; } = 100L * 1024 * 1024;       // 104857600
    public long FuelPerCall { get; init; } = 1_000_000;
    public long TimeoutMs { get; init; } = 30_000;
    public long StorageBytes { get; init; } = 10L * 1024 * 1024;       // 10485760
    public long OutputBytes { get; init; } = 4L * 1024 * 1024;
    public long RequestsPerMinute { get; init; } = 100;
    public long MaxBodyBytes { get; init; } = 10L * 1024 * 1024;
    public long NetworkTimeoutMs { get; init; } = 30_000;

    /// <summary>
    /// Every limit with its JSON name (manifest <c>resource_limits</c>, policy <c>limits</c>, ctx <c>limits</c>),
    /// whether a manifest may ask for it, whether a plugin sees it in <c>ctx.limits</c>, its smallest value in a
    /// manifest, and the largest value a policy may set (more stops the daemon at start).
    /// </summary>
    public static readonly IReadOnlyList<LimitField> Fields =
    [
        new("memory_bytes", ManifestMayRequest: true, InPluginContext: true, ManifestMinimum: 1, Maximum: 4L << 30, l => l.MemoryBytes, (l, v) => l with { MemoryBytes = v }), // wasm32's whole address space
        new("fuel_per_call", ManifestMayRequest: true, InPluginContext: true, ManifestMinimum: 1, Maximum: 1_000_000_000_000_000, l => l.FuelPerCall, (l, v) => l with { FuelPerCall = v }),
        new("timeout_ms", ManifestMayRequest: true, InPluginContext: true, ManifestMinimum: 1, Maximum: 3_600_000, l => l.TimeoutMs, (l, v) => l with { TimeoutMs = v }), // an hour
        new("storage_bytes", ManifestMayRequest: true, InPluginContext: true, ManifestMinimum: 0, Maximum: 64L << 30, l => l.StorageBytes, (l, v) => l with { StorageBytes = v }),
        new("output_bytes", ManifestMayRequest: false, InPluginContext: true, ManifestMinimum: 0, Maximum: 64L << 20, l => l.OutputBytes, (l, v) => l with { OutputBytes = v }), // under the 80 MiB gRPC message cap
        new("requests_per_minute", ManifestMayRequest: false, InPluginContext: false, ManifestMinimum: 0, Maximum: 100_000, l => l.RequestsPerMinute, (l, v) => l with { RequestsPerMinute = v }),
        new("max_body_bytes", ManifestMayRequest: false, InPluginContext: false, ManifestMinimum: 0, Maximum: 64L << 20, l => l.MaxBodyBytes, (l, v) => l with { MaxBodyBytes = v }),
        new("network_timeout_ms", ManifestMayRequest: false, InPluginContext: false, ManifestMinimum: 0, Maximum: 600_000, l => l.NetworkTimeoutMs, (l, v) => l with { NetworkTimeoutMs = v }), // ten minutes
    ];

    /// <summary>
    /// The limits a plugin runs under: each limit a manifest may ask for is the smaller of its request and
    /// the cap; the others are the cap (a manifest's defaults are requests, so raising a cap alone gives no more).
    /// </summary>
    public static ResourceLimits Effective(ResourceLimits requested, ResourceLimits caps)
    {
        var effective = caps;
        foreach (var field in Fields)
            if (field.ManifestMayRequest) effective = field.With(effective, Math.Min(field.Get(requested), field.Get(caps)));
        return effective;
    }
}

/// <summary>One row of <see cref="ResourceLimits.Fields"/>.</summary>
public sealed record LimitField(
    string Name,
    bool ManifestMayRequest,
    bool InPluginContext,
    long ManifestMinimum,
    long Maximum,
    Func<ResourceLimits, long> Get,
    Func<ResourceLimits, long, ResourceLimits> With);
