using System.Globalization;
using Connectias.Sandbox.Worker.V1;
using Connectias.Sandbox.WorkerProtocol;
using Google.Protobuf;
using Grpc.Core;

namespace Connectias.Sandbox.Daemon.Calls;

/// <summary>What became of one call, for the caller and for whoever supervises the plugin.</summary>
/// <param name="Ran">False when the call never reached the worker (its deadline passed while it waited).</param>
/// <param name="Terminate">Set when the worker must be ended: a fatal fault, a hung or dead worker.</param>
/// <param name="Crashed">With <paramref name="Terminate"/>: the worker crashed rather than broke a limit.</param>
/// <param name="ReportWhyEnded">The caller learns why the worker ended (its cause) rather than this call's error.</param>
/// <param name="WorkerFault">The worker answered with a fault of the plugin's (as opposed to a transport failure).</param>
internal sealed record CallOutcome(
    V1.ExecuteResponse? Response,
    SandboxException? Error,
    bool Ran,
    long? MemoryBytes = null,
    long FuelConsumed = 0,
    bool Terminate = false,
    bool Crashed = false,
    bool ReportWhyEnded = false,
    bool WorkerFault = false);

/// <summary>
/// The call path: one Execute sent to a worker as a unary gRPC call, and its answer mapped to an outcome. The
/// worker enforces the deadline itself; the daemon's own deadline, <c>CallGraceMs</c> later, catches a worker
/// that hangs. Knows nothing of plugins' state: the outcome says what must happen.
/// </summary>
internal static class WorkerCallPath
{
    public static async Task<CallOutcome> RunAsync(PluginWorker.PluginWorkerClient worker, string pluginId, ResourceLimits limits, CallJob job,
        TimeSpan callGrace, Func<SandboxException?> endedBy, Action onSent)
    {
        var remaining = job.Deadline is { } clientDeadline ? clientDeadline - DateTime.UtcNow : (TimeSpan?)null;
        if (remaining <= TimeSpan.Zero)
            return new CallOutcome(null, new SandboxException(ErrorReason.Timeout, $"the call's deadline passed while it waited for plugin {pluginId}", ErrorMetadata.For(pluginId)), Ran: false);

        var limit = TimeSpan.FromMilliseconds(limits.TimeoutMs);
        var callWindow = remaining is { } r && r < limit ? r : limit;
        onSent();
        try
        {
            var response = await worker.ExecuteAsync(new ExecuteRequest
            {
                Command = job.Command,
                Args = UnsafeByteOperations.UnsafeWrap(job.Args),
                DeadlineMs = (ulong)Math.Max(1, callWindow.TotalMilliseconds),
            }, deadline: DateTime.UtcNow + callWindow + callGrace);

            var memory = (long)response.MemoryBytes;
            if (response.Fault is { } fault)
            {
                var error = WorkerFaults.ToError(fault, pluginId);
                var fuel = error.Metadata.TryGetValue("fuel_consumed", out var fuelText) && long.TryParse(fuelText, CultureInfo.InvariantCulture, out var used) ? used : 0;
                return new CallOutcome(null, error, Ran: true, memory, fuel, Terminate: fault.Fatal, Crashed: error.Reason == ErrorReason.PluginCrashed, WorkerFault: true);
            }

            return new CallOutcome(new V1.ExecuteResponse
            {
                Output = response.Output,
                Stats = new V1.ExecutionStats { FuelConsumed = response.FuelConsumed, DurationUs = response.DurationUs, MemoryBytes = response.MemoryBytes },
            }, null, Ran: true, memory, (long)response.FuelConsumed);
        }
        catch (Exception e) when (e is RpcException or ObjectDisposedException)
        {
            if (endedBy() is { } cause) return new CallOutcome(null, cause, Ran: true); // the daemon ended this worker on purpose
            if (e is RpcException { StatusCode: StatusCode.DeadlineExceeded })
            {
                return new CallOutcome(null, new SandboxException(ErrorReason.Timeout,
                    $"plugin {pluginId} did not answer within {callWindow.TotalMilliseconds:F0} ms; its worker was killed",
                    ErrorMetadata.For(pluginId, ("limit", ((long)callWindow.TotalMilliseconds).ToString(CultureInfo.InvariantCulture)))), Ran: true, Terminate: true);
            }

            return new CallOutcome(null, new SandboxException(ErrorReason.PluginCrashed, $"the worker of plugin {pluginId} died during the call ({(e as RpcException)?.Status.Detail ?? e.Message})",
                ErrorMetadata.For(pluginId)), Ran: true, Terminate: true, Crashed: true, ReportWhyEnded: true);
        }
    }
}
