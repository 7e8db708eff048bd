using System.Runtime.InteropServices;

namespace Connectias.Sandbox.Worker;

/// <summary>
/// Makes the worker die with its parent, however the parent died (SIGKILL included): the kernel's parent-death
/// signal, and a thread blocked on a pidfd of the parent that wakes only when the parent exits. The pidfd covers
/// what the signal cannot (the signal fires when the parent *thread* that spawned us exits, and is lost if the
/// parent died before it was armed) without polling: an idle worker runs nothing.
/// </summary>
internal static partial class ParentWatch
{
    private const int PrSetPdeathsig = 1;
    private const int Sigkill = 9;
    private const long SysPidfdOpen = 434; // the same number on x86-64 and arm64
    private const short PollIn = 0x1;

    [LibraryImport("libc", SetLastError = true)]
    private static partial int prctl(int option, nint arg2, nint arg3, nint arg4, nint arg5);

    [LibraryImport("libc")]
    private static partial int getppid();

    [LibraryImport("libc", SetLastError = true)]
    private static partial long syscall(long number, int pid, uint flags);

    [LibraryImport("libc", SetLastError = true)]
    private static unsafe partial int poll(PollFd* fds, nuint count, int timeout);

    [StructLayout(LayoutKind.Sequential)]
    private struct PollFd
    {
        public int Fd;
        public short Events;
        public short Revents;
    }

    public static int ParentPid => getppid();

    /// <summary>Arms both mechanisms; returns false when the parent is already gone.</summary>
    public static bool Start(int expectedParent, bool useDeathSignal, Action onParentGone, Action<string> warn)
    {
        if (useDeathSignal && prctl(PrSetPdeathsig, Sigkill, 0, 0, 0) != 0)
            warn($"prctl(PR_SET_PDEATHSIG) failed: errno {Marshal.GetLastPInvokeError()}; relying on the pidfd watch");
        var pidfd = (int)syscall(SysPidfdOpen, expectedParent, 0);
        var openError = Marshal.GetLastPInvokeError();
        // Checked after both are armed: a parent that died before this point is seen here, one that dies after by them.
        if (getppid() != expectedParent) return false;
        if (pidfd < 0)
        {
            warn($"pidfd_open({expectedParent}) failed: errno {openError}; only the parent-death signal watches the parent");
            return true;
        }

        var thread = new Thread(() =>
        {
            WaitForExit(pidfd);
            onParentGone();
        })
        {
            IsBackground = true,
            Name = "parent-watch",
        };
        thread.Start();
        return true;
    }

    /// <summary>
    /// Calls <paramref name="onClosed"/> when stdin reaches end of file: the daemon holds the pipe's other end and never
    /// writes, so that happens exactly when it is gone, even if it died while bubblewrap was still setting up (before any
    /// death signal was armed). A thread blocked in read(2), no polling.
    /// </summary>
    public static void WatchStdin(Action onClosed)
    {
        var stdin = Console.OpenStandardInput();
        new Thread(() =>
        {
            var buffer = new byte[64];
            try
            {
                while (stdin.Read(buffer) > 0)
                {
                    // the daemon never writes; anything read is ignored
                }
            }
            catch (IOException)
            {
                // a broken pipe is an end too
            }

            onClosed();
        })
        {
            IsBackground = true,
            Name = "stdin-watch",
        }.Start();
    }

    /// <summary>Blocks until the process behind <paramref name="pidfd"/> exits (its pidfd becomes readable).</summary>
    private static unsafe void WaitForExit(int pidfd)
    {
        var entry = new PollFd { Fd = pidfd, Events = PollIn };
        while (poll(&entry, 1, -1) < 0 && Marshal.GetLastPInvokeError() == 4 /* EINTR */)
        {
        }
    }
}
