using System.Runtime.InteropServices;

namespace Connectias.Sandbox.Worker;

/// <summary>
/// Makes the worker die with its parent, however the parent died (SIGKILL included): the kernel's
/// parent-death signal, and a watchdog that notices being re-parented. The watchdog covers what the
/// signal cannot: the signal fires when the parent *thread* that spawned us exits, and it is lost if
/// the parent died before it was set.
/// </summary>
internal static partial class ParentWatch
{
    private const int PrSetPdeathsig = 1;
    private const int Sigkill = 9;
    public static readonly TimeSpan Interval = TimeSpan.FromMilliseconds(100);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int prctl(int option, nint arg2, nint arg3, nint arg4, nint arg5);

    [LibraryImport("libc")]
    private static partial int getppid();

    public static int ParentPid => getppid();

    /// <summary>Arms both mechanisms; returns false when the parent is already gone.</summary>
    public static bool Start(int expectedParent, bool useDeathSignal, Action onParentGone)
    {
        if (useDeathSignal && prctl(PrSetPdeathsig, Sigkill, 0, 0, 0) != 0)
            Console.Error.WriteLine($"{{\"level\":\"warning\",\"source\":\"worker\",\"message\":\"prctl(PR_SET_PDEATHSIG) failed: errno {Marshal.GetLastPInvokeError()}; relying on the watchdog\"}}");
        if (getppid() != expectedParent) return false; // the parent died before the signal was armed

        var thread = new Thread(() =>
        {
            while (getppid() == expectedParent) Thread.Sleep(Interval);
            onParentGone();
        })
        {
            IsBackground = true,
            Name = "parent-watchdog",
        };
        thread.Start();
        return true;
    }
}
