using Google.Protobuf.WellKnownTypes;
using Google.Rpc;
using Grpc.Core;

namespace Connectias.Sandbox.Contracts;

/// <summary>
/// The one place where SPEC reasons become gRPC statuses (SPEC §4) and back: the status code, and a
/// <c>google.rpc.ErrorInfo</c> with domain, reason and metadata in the status details.
/// </summary>
public static class ErrorStatus
{
    public static Grpc.Core.StatusCode StatusCodeOf(ErrorReason reason) => reason switch
    {
        ErrorReason.InvalidSignature => Grpc.Core.StatusCode.PermissionDenied,
        ErrorReason.CorruptedData => Grpc.Core.StatusCode.InvalidArgument,
        ErrorReason.UnsupportedVersion => Grpc.Core.StatusCode.FailedPrecondition,
        ErrorReason.PermissionDenied => Grpc.Core.StatusCode.PermissionDenied,
        ErrorReason.ResourceExhausted => Grpc.Core.StatusCode.ResourceExhausted,
        ErrorReason.DependencyNotMet => Grpc.Core.StatusCode.FailedPrecondition,
        ErrorReason.InitFailed => Grpc.Core.StatusCode.FailedPrecondition,
        ErrorReason.AlreadyLoaded => Grpc.Core.StatusCode.AlreadyExists,
        ErrorReason.PluginNotFound => Grpc.Core.StatusCode.NotFound,
        ErrorReason.FuelExhausted => Grpc.Core.StatusCode.ResourceExhausted,
        ErrorReason.MemoryLimitExceeded => Grpc.Core.StatusCode.ResourceExhausted,
        ErrorReason.Timeout => Grpc.Core.StatusCode.DeadlineExceeded,
        ErrorReason.NetworkTimeout => Grpc.Core.StatusCode.DeadlineExceeded,
        ErrorReason.InvalidCommand => Grpc.Core.StatusCode.InvalidArgument,
        ErrorReason.SecurityViolation => Grpc.Core.StatusCode.PermissionDenied,
        ErrorReason.OutputTooLarge => Grpc.Core.StatusCode.ResourceExhausted,
        ErrorReason.PluginError => Grpc.Core.StatusCode.Unknown,
        ErrorReason.PluginTrapped => Grpc.Core.StatusCode.Internal,
        ErrorReason.PluginCrashed => Grpc.Core.StatusCode.Unavailable,
        ErrorReason.QueueFull => Grpc.Core.StatusCode.ResourceExhausted,
        ErrorReason.AuditLogFailed => Grpc.Core.StatusCode.Unavailable,
        _ => throw new ArgumentOutOfRangeException(nameof(reason), reason, "no status code for this reason"),
    };

    /// <summary>
    /// The most characters of an error's message a status carries. The message travels in the HTTP/2 trailers twice
    /// (grpc-message and grpc-status-details-bin): a plugin's 64 KiB error message there once broke the caller's whole
    /// connection, other calls on it included.
    /// </summary>
    public const int MaxStatusMessageChars = 2048;

    /// <summary>The exception a gRPC service throws for a sandbox error.</summary>
    public static RpcException ToRpcException(SandboxException error)
    {
        var info = new ErrorInfo { Domain = ErrorReasons.Domain, Reason = error.Reason.WireName() };
        foreach (var (key, value) in error.Metadata) info.Metadata[key] = value;
        var status = new Google.Rpc.Status
        {
            Code = (int)StatusCodeOf(error.Reason),
            Message = Bounded(error.Message),
            Details = { Any.Pack(info) },
        };
        return status.ToRpcException();
    }

    private static string Bounded(string message) => message.Length <= MaxStatusMessageChars
        ? message
        : string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{message[..MaxStatusMessageChars]}... (cut: {message.Length} characters in all)");

    /// <summary>
    /// Recovers the sandbox error from a status a daemon sent, or null when the status carries no
    /// sandbox <c>ErrorInfo</c> (a transport failure, a proxy's error, ...).
    /// </summary>
    public static SandboxException? FromRpcException(RpcException exception)
    {
        var info = exception.GetRpcStatus()?.GetDetail<ErrorInfo>();
        if (info is null || info.Domain != ErrorReasons.Domain || !ErrorReasons.TryParse(info.Reason, out var reason)) return null;
        return new SandboxException(reason, exception.Status.Detail, new Dictionary<string, string>(info.Metadata), exception);
    }
}
