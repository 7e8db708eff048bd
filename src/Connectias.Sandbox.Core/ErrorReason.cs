namespace Connectias.Sandbox;

/// <summary>
/// The stable error reasons of SPEC §4. Their wire names (see <see cref="ErrorReasons.WireName"/>) are
/// what clients see in <c>google.rpc.ErrorInfo.reason</c>; the mapping to gRPC status codes lives in
/// the Contracts library, in one place.
/// </summary>
public enum ErrorReason
{
    InvalidSignature,
    CorruptedData,
    UnsupportedVersion,
    PermissionDenied,
    ResourceExhausted,
    DependencyNotMet,
    InitFailed,
    AlreadyLoaded,
    PluginNotFound,
    FuelExhausted,
    MemoryLimitExceeded,
    Timeout,
    NetworkTimeout,
    InvalidCommand,
    SecurityViolation,
    OutputTooLarge,
    PluginError,
    PluginTrapped,
    PluginCrashed,
    QueueFull,

    /// <summary>The audit log cannot be written and the policy says <c>audit_failure: refuse</c> (SPEC §5).</summary>
    AuditLogFailed,
}

public static class ErrorReasons
{
    /// <summary>The <c>ErrorInfo.domain</c> every sandbox error carries.</summary>
    public const string Domain = "sandbox.connectias";

    private static readonly Dictionary<ErrorReason, string> WireNames = new()
    {
        [ErrorReason.InvalidSignature] = "INVALID_SIGNATURE",
        [ErrorReason.CorruptedData] = "CORRUPTED_DATA",
        [ErrorReason.UnsupportedVersion] = "UNSUPPORTED_VERSION",
        [ErrorReason.PermissionDenied] = "PERMISSION_DENIED",
        [ErrorReason.ResourceExhausted] = "RESOURCE_EXHAUSTED",
        [ErrorReason.DependencyNotMet] = "DEPENDENCY_NOT_MET",
        [ErrorReason.InitFailed] = "INIT_FAILED",
        [ErrorReason.AlreadyLoaded] = "ALREADY_LOADED",
        [ErrorReason.PluginNotFound] = "PLUGIN_NOT_FOUND",
        [ErrorReason.FuelExhausted] = "FUEL_EXHAUSTED",
        [ErrorReason.MemoryLimitExceeded] = "MEMORY_LIMIT_EXCEEDED",
        [ErrorReason.Timeout] = "TIMEOUT",
        [ErrorReason.NetworkTimeout] = "NETWORK_TIMEOUT",
        [ErrorReason.InvalidCommand] = "INVALID_COMMAND",
        [ErrorReason.SecurityViolation] = "SECURITY_VIOLATION",
        [ErrorReason.OutputTooLarge] = "OUTPUT_TOO_LARGE",
        [ErrorReason.PluginError] = "PLUGIN_ERROR",
        [ErrorReason.PluginTrapped] = "PLUGIN_TRAPPED",
        [ErrorReason.PluginCrashed] = "PLUGIN_CRASHED",
        [ErrorReason.QueueFull] = "QUEUE_FULL",
        [ErrorReason.AuditLogFailed] = "AUDIT_LOG_FAILED",
    };

    private static readonly Dictionary<string, ErrorReason> ByWireName =
        WireNames.ToDictionary(pair => pair.Value, pair => pair.Key, StringComparer.Ordinal);

    public static IReadOnlyCollection<ErrorReason> All => WireNames.Keys;

    public static string WireName(this ErrorReason reason) => WireNames[reason];

    public static bool TryParse(string wireName, out ErrorReason reason) =>
        ByWireName.TryGetValue(wireName, out reason);

    /// <summary>
    /// Whether a call that ends with this reason terminates the plugin (SPEC §2): fuel, memory,
    /// deadline, output limit, a trap, or the plugin crashing. A plugin's own error, a refused command
    /// or a network timeout it reports leave it READY.
    /// </summary>
    public static bool TerminatesPlugin(this ErrorReason reason) => reason is
        ErrorReason.FuelExhausted or ErrorReason.MemoryLimitExceeded or ErrorReason.Timeout or
        ErrorReason.OutputTooLarge or ErrorReason.PluginTrapped or ErrorReason.PluginCrashed or
        ErrorReason.SecurityViolation;
}
