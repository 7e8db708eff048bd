namespace Connectias.Sandbox;

/// <summary>The version of this host that manifests' <c>min_core_version</c>/<c>max_core_version</c> compare against.</summary>
public static class CoreVersion
{
    public const string Current = "1.0.0";

    /// <summary>Plugin ABI versions this host implements (SPEC §2).</summary>
    public static readonly IReadOnlySet<int> SupportedAbiVersions = new HashSet<int> { 1 };
}
