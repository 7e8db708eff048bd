namespace Connectias.Sandbox.Packaging;

/// <summary>
/// The hygiene limits of SPEC §1, as one named setting each. The defaults are the SPEC's; an operator
/// may tighten them, and tests do to keep hostile packages small.
/// </summary>
public sealed record PackageLimits
{
    public static readonly PackageLimits Default = new();

    public long MaxPackageBytes { get; init; } = 64L * 1024 * 1024;
    public int MaxEntries { get; init; } = 256;
    public long MaxTotalUncompressedBytes { get; init; } = 128L * 1024 * 1024;
    public int MaxManifestBytes { get; init; } = 64 * 1024;

    /// <summary>An entry may not inflate more than this many times its compressed size ...</summary>
    public long MaxCompressionRatio { get; init; } = 200;

    /// <summary>... once it is larger than this (small, highly regular files compress extremely well).</summary>
    public long CompressionRatioFloorBytes { get; init; } = 1024 * 1024;
}
