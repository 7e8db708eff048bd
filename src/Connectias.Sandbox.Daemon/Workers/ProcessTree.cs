using System.Runtime.InteropServices;

namespace Connectias.Sandbox.Daemon.Workers;

/// <summary>Reads and ends a worker's process tree through /proc and kill(2).</summary>
internal static partial class ProcessTree
{
    private const int Sigkill = 9;
    private const int Sigterm = 15;
    private static readonly long PageSize = Environment.SystemPageSize;
    private const double ClockTicksPerSecond = 100.0; // USER_HZ on Linux

    [LibraryImport("libc", SetLastError = true)]
    private static partial int kill(int pid, int signal);

    /// <summary>The process and all its descendants (through /proc/PID/task/*/children).</summary>
    public static List<int> WithDescendants(int pid)
    {
        var all = new List<int>();
        var pending = new Stack<int>();
        pending.Push(pid);
        while (pending.Count > 0 && all.Count < 4096)
        {
            var current = pending.Pop();
            if (!IsAlive(current)) continue;
            all.Add(current);
            try
            {
                foreach (var task in Directory.EnumerateDirectories($"/proc/{current}/task"))
                {
                    var children = File.ReadAllText(Path.Combine(task, "children"));
                    foreach (var child in children.Split(' ', StringSplitOptions.RemoveEmptyEntries))
                        if (int.TryParse(child, out var childPid)) pending.Push(childPid);
                }
            }
            catch (IOException)
            {
                // the process ended while we looked
            }
            catch (UnauthorizedAccessException)
            {
            }
        }

        return all;
    }

    /// <summary>
    /// The host pid of the process in <paramref name="rootPid"/>'s tree that calls itself <paramref name="namespacePid"/>
    /// in its own PID namespace (the last field of <c>NSpid</c> in /proc/PID/status): how a worker inside
    /// bubblewrap, which only knows its namespace pid, is found from outside. Null when none matches.
    /// </summary>
    public static int? HostPidOf(int rootPid, int namespacePid)
    {
        foreach (var pid in WithDescendants(rootPid))
        {
            try
            {
                var line = File.ReadLines($"/proc/{pid}/status").FirstOrDefault(l => l.StartsWith("NSpid:", StringComparison.Ordinal));
                var fields = line?["NSpid:".Length..].Split((char[])['\t', ' '], StringSplitOptions.RemoveEmptyEntries);
                if (fields is { Length: > 0 } && int.TryParse(fields[^1], System.Globalization.CultureInfo.InvariantCulture, out var inner) && inner == namespacePid &&
                    (fields.Length > 1 || pid == namespacePid))
                    return pid;
            }
            catch (IOException)
            {
                // ended while we looked
            }
        }

        return null;
    }

    /// <summary>Resident memory of the whole tree, in bytes.</summary>
    public static long RssBytes(IEnumerable<int> pids) => pids.Sum(pid =>
    {
        try
        {
            var fields = File.ReadAllText($"/proc/{pid}/statm").Split(' ');
            return long.Parse(fields[1], System.Globalization.CultureInfo.InvariantCulture) * PageSize;
        }
        catch (Exception e) when (e is IOException or FormatException or IndexOutOfRangeException)
        {
            return 0L;
        }
    });

    /// <summary>User plus system CPU time of the whole tree, in seconds.</summary>
    public static double CpuSeconds(IEnumerable<int> pids) => pids.Sum(pid =>
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' '); // the command name may contain spaces
            return (double.Parse(fields[11], System.Globalization.CultureInfo.InvariantCulture) +
                    double.Parse(fields[12], System.Globalization.CultureInfo.InvariantCulture)) / ClockTicksPerSecond;
        }
        catch (Exception e) when (e is IOException or FormatException or IndexOutOfRangeException)
        {
            return 0.0;
        }
    });

    /// <summary>Alive and not a zombie.</summary>
    public static bool IsAlive(int pid)
    {
        try
        {
            var status = File.ReadAllText($"/proc/{pid}/stat");
            var state = status[status.LastIndexOf(')') + 2];
            return state is not ('Z' or 'X');
        }
        catch (IOException)
        {
            return false;
        }
    }

    /// <summary>SIGKILL to the process group (the worker leads its own) and to every descendant found.</summary>
    public static void KillTree(int pid)
    {
        var tree = WithDescendants(pid);
        kill(-pid, Sigkill);
        foreach (var member in tree) kill(member, Sigkill);
    }

    public static void Terminate(int pid) => kill(pid, Sigterm);

    public static void Kill(int pid) => kill(pid, Sigkill);
}
