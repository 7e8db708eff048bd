namespace Connectias.Sandbox.WorkerProtocol;

/// <summary>A SandboxException in the worker becomes a <see cref="Worker.V1.Fault"/> and back in the daemon, here only.</summary>
public static class WorkerFaults
{
    /// <summary>Metadata of a Load's fault when the worker's engine refused the cached compiled module: recompile, do not fail.</summary>
    public const string PrecompiledRefusedKey = "precompiled_refused";

    /// <summary>
    /// The exit status of a worker its seccomp filter killed (128 + SIGSYS), whether the daemon sees the worker itself
    /// or bubblewrap, which passes a child's death by signal on as 128 + the signal.
    /// </summary>
    public const int KilledBySyscallFilter = 128 + 31;

    /// <summary>Whether the worker's seccomp filter exists for this machine: it is written for x86-64 Linux only.</summary>
    public static bool SyscallFilterAvailable =>
        OperatingSystem.IsLinux() && System.Runtime.InteropServices.RuntimeInformation.OSArchitecture == System.Runtime.InteropServices.Architecture.X64;

    public static Worker.V1.Fault ToFault(SandboxException error)
    {
        var fault = new Worker.V1.Fault { Reason = error.Reason.WireName(), Message = error.Message, Fatal = error.Reason.TerminatesPlugin() };
        foreach (var (key, value) in error.Metadata) fault.Metadata[key] = value;
        return fault;
    }

    /// <summary>
    /// The error a fault stands for, tagged with the plugin the daemon knows the worker by (a worker's own
    /// word on that is not trusted). An unknown reason from a worker is a crash.
    /// </summary>
    public static SandboxException ToError(Worker.V1.Fault fault, string pluginId)
    {
        var reason = ErrorReasons.TryParse(fault.Reason, out var parsed) ? parsed : ErrorReason.PluginCrashed;
        var metadata = new Dictionary<string, string>(fault.Metadata) { ["plugin_id"] = pluginId };
        return new SandboxException(reason, fault.Message, metadata);
    }
}
