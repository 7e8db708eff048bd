namespace Connectias.Sandbox.TestSupport;

/// <summary>CPU ticks (utime + stime) and context switches of all of a process's threads, from /proc.</summary>
public sealed record ProcessCounters(long CpuTicks, long ContextSwitches)
{
    public static ProcessCounters Read(int pid) => new(ProcFs.CpuTicks(pid), ProcFs.ContextSwitches(pid));
}
