using System.Runtime.InteropServices;

namespace Connectias.Sandbox.FakeWorker;

/// <summary>Leaving the way a crashing worker does, and noticing that the daemon is gone.</summary>
internal static partial class ProcessExit
{
    [LibraryImport("libc", EntryPoint = "_exit")]
    private static partial void ExitImmediately(int status);

    [LibraryImport("libc")]
    private static partial int getppid();

    [LibraryImport("libc", EntryPoint = "socket")]
    private static partial int Socket(int domain, int type, int protocol);

    /// <summary>socket(AF_INET, SOCK_STREAM, 0): what escaped plugin code would call first to reach the network.</summary>
    public static void MakeForbiddenCall()
    {
        Console.Error.WriteLine("fake worker: calling socket(AF_INET, SOCK_STREAM)");
        Console.Error.Flush();
        var descriptor = Socket(2, 1, 0);
        Console.Error.WriteLine($"fake worker: socket() returned {descriptor}; the filter let it through");
        ExitImmediately(Behaviour.CrashStatus);
    }

    /// <summary>
    /// Ends the process at once with <paramref name="status"/>, as a crash would: no shutdown of the host, no
    /// reply to the call in flight. (Environment.Exit would wait for the host to stop, which waits for that call.)
    /// </summary>
    public static void Now(int status)
    {
        Console.Error.Flush();
        ExitImmediately(status);
    }

    /// <summary>
    /// Exits once the process is re-parented, i.e. once the daemon that started it is gone, so a hanging fake
    /// worker never outlives a test run that was aborted before the daemon could kill it.
    /// </summary>
    public static void WithParent(int parentPid)
    {
        var watchdog = new Thread(() =>
        {
            while (getppid() == parentPid) Thread.Sleep(200);
            Now(3);
        })
        {
            IsBackground = true,
            Name = "parent-watchdog",
        };
        watchdog.Start();
    }
}
