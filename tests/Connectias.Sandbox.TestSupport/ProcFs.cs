using System.Globalization;

namespace Connectias.Sandbox.TestSupport;

/// <summary>What the kernel says a process holds and does: read from /proc, as the daemon's own monitor does (for the tests and the benchmark).</summary>
public static class ProcFs
{
    /// <summary>
    /// USER_HZ, the unit of utime and stime in /proc/PID/stat: fixed at 100 by the Linux ABI on x86 and arm
    /// (what <c>getconf CLK_TCK</c> prints), whatever the kernel's own tick rate.
    /// </summary>
    public const int TicksPerSecond = 100;

    /// <summary>Resident set: every page mapped and present, shared ones counted whole in each process.</summary>
    public static long RssBytes(int pid) => StatusNumber(pid, "VmRSS:") * 1024;

    /// <summary>The most resident memory the process ever had.</summary>
    public static long PeakRssBytes(int pid) => StatusNumber(pid, "VmHWM:") * 1024;

    public static int Threads(int pid) => (int)StatusNumber(pid, "Threads:");

    /// <summary>Voluntary and involuntary context switches of all the process's threads so far: how often it woke up.</summary>
    public static long ContextSwitches(int pid)
    {
        long switches = 0;
        foreach (var task in Directory.GetDirectories($"/proc/{pid}/task"))
        {
            try
            {
                switches += NumberField(Path.Combine(task, "status"), "voluntary_ctxt_switches:") + NumberField(Path.Combine(task, "status"), "nonvoluntary_ctxt_switches:");
            }
            catch (IOException)
            {
                // a thread that ended meanwhile
            }
        }

        return switches;
    }

    /// <summary>Proportional set: each shared page divided among the processes that map it, so a sum over processes is honest.</summary>
    public static long PssBytes(int pid) => NumberField($"/proc/{pid}/smaps_rollup", "Pss:") * 1024;

    /// <summary>User plus system CPU time of all the process's threads so far, in <see cref="TicksPerSecond"/> ticks.</summary>
    public static long CpuTicks(int pid)
    {
        var stat = File.ReadAllText($"/proc/{pid}/stat");
        // The command name (field 2) is in parentheses and may hold spaces: count fields after its last ')'.
        // There the state is field 3, so utime (field 14) and stime (field 15) are at 11 and 12.
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        return long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
    }

    /// <summary>The command line with its NUL separators as spaces, to say which program a pid is.</summary>
    public static string CommandLine(int pid) => File.ReadAllText($"/proc/{pid}/cmdline").Replace('\0', ' ').Trim();

    /// <summary>Every process below <paramref name="pid"/>: children, their children, and so on.</summary>
    public static IReadOnlyList<int> Descendants(int pid)
    {
        var children = new Dictionary<int, List<int>>();
        foreach (var directory in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(directory), out var candidate)) continue;
            try
            {
                var stat = File.ReadAllText(Path.Combine(directory, "stat"));
                var parent = int.Parse(stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[1], CultureInfo.InvariantCulture);
                if (!children.TryGetValue(parent, out var list)) children[parent] = list = [];
                list.Add(candidate);
            }
            catch (IOException)
            {
                // the process ended while we listed /proc
            }
        }

        var found = new List<int>();
        var pending = new Queue<int>([pid]);
        while (pending.TryDequeue(out var next))
            foreach (var child in children.GetValueOrDefault(next) ?? [])
            {
                found.Add(child);
                pending.Enqueue(child);
            }

        return found;
    }

    /// <summary><paramref name="read"/> of a process that may end meanwhile (a pool's worker taken and replaced): 0 once it is gone.</summary>
    public static long OrZero(Func<int, long> read, int pid)
    {
        try
        {
            return read(pid);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidOperationException)
        {
            return 0;
        }
    }

    private static long StatusNumber(int pid, string field) => NumberField($"/proc/{pid}/status", field);

    private static long NumberField(string path, string field)
    {
        // "VmRSS:     84212 kB", "Threads:\t12"
        var line = File.ReadLines(path).First(l => l.StartsWith(field, StringComparison.Ordinal));
        return long.Parse(line[field.Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture);
    }
}
