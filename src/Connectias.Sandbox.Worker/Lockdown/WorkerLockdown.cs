using Connectias.Sandbox.WorkerProtocol;

namespace Connectias.Sandbox.Worker.Lockdown;

/// <summary>
/// What the worker does to itself once the daemon's connection is accepted and before it reads the first request:
/// installs the system-call filter (<see cref="SyscallFilter"/>, with no_new_privs). The uid, the capabilities and
/// the mount namespace were settled before the worker started (bubblewrap and setpriv, see the daemon's
/// WorkerCommandLine); the filter is what the worker adds from inside, because only it knows when start-up ends.
/// </summary>
internal static class WorkerLockdown
{
    public static void Apply(WorkerLog log, bool syscallFilter)
    {
        // No core files: a worker the filter kills with SIGSYS would otherwise dump its plugin's memory to disk.
        ProcessLimits.DisableCoreDumps();
        if (!syscallFilter)
        {
            log.Worker("warning", "the system-call filter is off (Sandbox:WorkerSyscallFilter=off): plugin code that escapes WebAssembly may make any system call");
            return;
        }

        if (!WorkerFaults.SyscallFilterAvailable)
        {
            log.Worker("warning", "no system-call filter on this architecture (x86-64 only)");
            return;
        }

        SyscallFilter.Install();
        log.Worker("info", "system-call filter installed (seccomp allow-list, no_new_privs)");
    }
}
