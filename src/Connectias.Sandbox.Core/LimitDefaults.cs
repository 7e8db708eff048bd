namespace Connectias.Sandbox;

/// <summary>
/// Every default limit of the SPEC in one place. A manifest may ask for less, the administrator's
/// policy caps what it may have; these are what applies when neither says anything.
/// </summary>
public static class LimitDefaults
{
    public const long MemoryBytes = 100L * 1024 * 1024;        // 104857600
    public const long FuelPerCall = 1_000_000;
    public const long TimeoutMs = 30_000;
    public const long StorageBytes = 10L * 1024 * 1024;        // 10485760
    public const long OutputBytes = 4L * 1024 * 1024;
    public const int RequestsPerMinute = 100;
    public const long MaxBodyBytes = 10L * 1024 * 1024;
    public const long NetworkTimeoutMs = 30_000;
}

/// <summary>The version of this host that manifests' <c>min_core_version</c>/<c>max_core_version</c> compare against.</summary>
public static class CoreVersion
{
    public const string Current = "1.0.0";

    /// <summary>Plugin ABI versions this host implements (SPEC §2).</summary>
    public static readonly IReadOnlySet<int> SupportedAbiVersions = new HashSet<int> { 1 };
}
