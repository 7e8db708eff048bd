using Connectias.Sandbox.Client;
using Grpc.Core;

namespace Connectias.Sandbox.Ffi;

/// <summary>The return codes of SPEC §7, as the original bridge numbered them (-7 is unused there too).</summary>
internal static class ReturnCode
{
    public const int Ok = 0;
    public const int InvalidUtf8 = -1;
    public const int NullPointer = -2;
    public const int InitFailed = -3;
    public const int PluginNotFound = -4;
    public const int ExecutionFailed = -5;
    public const int SecurityViolation = -6;
    public const int LoadFailed = -8;
    public const int InvalidCommand = -9;
}

/// <summary>
/// This thread's last error, <c>REASON: message</c> (SPEC §7). Thread-static, so eight threads failing at
/// once each read their own; the host takes it with connectias_get_last_error, which clears it.
/// </summary>
internal static class LastError
{
    /// <summary>The reason of every failure that never got a sandbox answer: no daemon, not initialised, closed.</summary>
    public const string DaemonUnavailable = "DAEMON_UNAVAILABLE";

    [ThreadStatic] private static string? _error;

    public static void Set(string reason, string message) => _error = $"{reason}: {message}";

    public static string? Take()
    {
        var error = _error;
        _error = null;
        return error;
    }
}

/// <summary>Which call failed: a refusal means LOAD_FAILED for a load and EXECUTION_FAILED elsewhere.</summary>
internal enum Operation
{
    Connect,
    Load,
    Call,
}

/// <summary>
/// Turns whatever a bridge function caught into its return code and last error, so no exception ever
/// reaches the native caller (an exception escaping an UnmanagedCallersOnly method ends the process).
/// </summary>
internal static class Failures
{
    /// <summary>Sets the last error and returns <paramref name="code"/>, for the checks the bridge makes itself.</summary>
    public static int Fail(int code, string reason, string message)
    {
        LastError.Set(reason, message);
        return code;
    }

    public static int From(Exception exception, Operation operation) => exception switch
    {
        // SPEC §7: a failed init is always DAEMON_UNAVAILABLE, even when the daemon answered the check with a refusal.
        SandboxException refusal when operation == Operation.Connect =>
            Fail(ReturnCode.InitFailed, LastError.DaemonUnavailable, $"the connection check failed: {refusal.Reason.WireName()}: {refusal.Message}"),
        SandboxException refusal => Fail(CodeOf(refusal.Reason, operation), refusal.Reason.WireName(), refusal.Message),
        SandboxUnavailableException unavailable => Fail(ReturnCode.InitFailed, LastError.DaemonUnavailable, unavailable.Message),
        NotConnectedException notConnected => Fail(ReturnCode.InitFailed, LastError.DaemonUnavailable, notConnected.Message),
        // A status without the sandbox's ErrorInfo: something answered on the socket, but not as connectias-sandboxd.
        RpcException rpc => Fail(ReturnCode.InitFailed, LastError.DaemonUnavailable,
            $"no sandbox answer: gRPC status {rpc.StatusCode} ({rpc.Status.Detail})"),
        // Not expected; still reported, never thrown across the boundary.
        _ => Fail(ReturnCode.InitFailed, LastError.DaemonUnavailable,
            $"the bridge failed without an answer from the daemon: {exception.GetType().Name}: {exception.Message}"),
    };

    /// <summary>SPEC §7's grouping of the §4 reasons into the bridge's codes.</summary>
    public static int CodeOf(ErrorReason reason, Operation operation) => reason switch
    {
        ErrorReason.PluginNotFound => ReturnCode.PluginNotFound,
        ErrorReason.InvalidSignature or ErrorReason.PermissionDenied or ErrorReason.SecurityViolation => ReturnCode.SecurityViolation,
        ErrorReason.InvalidCommand => ReturnCode.InvalidCommand,
        _ when operation == Operation.Load => ReturnCode.LoadFailed,
        _ => ReturnCode.ExecutionFailed,
    };
}
