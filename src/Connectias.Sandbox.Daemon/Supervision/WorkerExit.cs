using System.Diagnostics;
using System.Globalization;
using Connectias.Sandbox.WorkerProtocol;

namespace Connectias.Sandbox.Daemon.Supervision;

/// <summary>Why a worker ended, in SPEC terms: what its exit status says, and a broken protocol.</summary>
internal static class WorkerExit
{
    /// <summary>How long a worker whose connection closed is given to be reaped before its status is read.</summary>
    private static readonly TimeSpan ReapWait = TimeSpan.FromSeconds(1);

    /// <summary>The exit status once the process has ended (waiting briefly for it), else null.</summary>
    public static async Task<int?> StatusAsync(Process process)
    {
        try
        {
            using var wait = new CancellationTokenSource(ReapWait);
            await process.WaitForExitAsync(wait.Token);
            return process.ExitCode;
        }
        catch (Exception e) when (e is OperationCanceledException or InvalidOperationException or ObjectDisposedException)
        {
            return null; // still running, or stopped and disposed meanwhile
        }
    }

    /// <summary>
    /// SECURITY_VIOLATION when the seccomp filter killed the worker: only the worker's own native code can make a
    /// system call, so plugin code escaped WebAssembly (or the allow-list misses a call the runtime needs; the
    /// operator's guide says how to tell). Null for any other status.
    /// </summary>
    public static SandboxException? Violation(string pluginId, int? status) => status == WorkerFaults.KilledBySyscallFilter
        ? new SandboxException(ErrorReason.SecurityViolation,
            $"the worker of plugin {pluginId} made a system call outside its allow-list and was killed (SIGSYS, exit status {status})",
            ErrorMetadata.For(pluginId, ("exit_status", status.Value.ToString(CultureInfo.InvariantCulture))))
        : null;

    /// <summary>SECURITY_VIOLATION for a worker that broke the worker protocol on its connection.</summary>
    public static SandboxException ProtocolBroken(string pluginId, WorkerConnectionException broken) => new(ErrorReason.SecurityViolation,
        $"the worker of plugin {pluginId} broke the worker protocol: {broken.Message}", ErrorMetadata.For(pluginId));

    public static SandboxException Crash(string pluginId, int? status) => new(ErrorReason.PluginCrashed,
        $"the worker of plugin {pluginId} exited unexpectedly (exit status {status?.ToString(CultureInfo.InvariantCulture) ?? "unknown"})",
        ErrorMetadata.For(pluginId));
}
