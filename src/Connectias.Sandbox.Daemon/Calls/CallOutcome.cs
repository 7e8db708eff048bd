namespace Connectias.Sandbox.Daemon.Calls;

/// <summary>What became of one call, for the caller and for whoever supervises the plugin.</summary>
/// <param name="Ran">False when the call never reached the plugin (cancelled, or its deadline passed while it waited).</param>
/// <param name="Terminate">Set when the worker must be ended: a fatal fault, a hung or dead worker, a broken protocol.</param>
/// <param name="Crashed">With <paramref name="Terminate"/>: the worker crashed rather than broke a limit.</param>
/// <param name="ReportWhyEnded">The caller learns why the worker ended (its cause) rather than this call's error.</param>
/// <param name="WorkerFault">The worker answered with a fault of the plugin's (as opposed to a transport failure).</param>
/// <param name="Cancelled">The caller cancelled the call before the plugin saw it.</param>
internal sealed record CallOutcome(
    V1.ExecuteResponse? Response,
    SandboxException? Error,
    bool Ran,
    long? MemoryBytes = null,
    long FuelConsumed = 0,
    bool Terminate = false,
    bool Crashed = false,
    bool ReportWhyEnded = false,
    bool WorkerFault = false,
    bool Cancelled = false);
