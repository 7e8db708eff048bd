namespace Connectias.Sandbox.TestSupport;

/// <summary>CPU ticks (utime + stime) and context switches of all of a process's threads, from /proc.</summary>
public sealed record ProcessCounters(long CpuTicks, long ContextSwitches)
{
    public static ProcessCounters Read(int pid)
    {
        var stat = File.ReadAllText($"/proc/{pid}/stat");
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        var ticks = long.Parse(fields[11]) + long.Parse(fields[12]); // utime and stime, fields 14 and 15 of stat(5)
        long switches = 0;
        foreach (var task in Directory.GetDirectories($"/proc/{pid}/task"))
        {
            try
            {
                foreach (var line in File.ReadLines(Path.Combine(task, "status")))
                {
                    if (line.StartsWith("voluntary_ctxt_switches:", StringComparison.Ordinal) || line.StartsWith("nonvoluntary_ctxt_switches:", StringComparison.Ordinal))
                        switches += long.Parse(line[(line.IndexOf(':') + 1)..].Trim());
                }
            }
            catch (IOException)
            {
                // a thread that ended meanwhile
            }
        }

        return new ProcessCounters(ticks, switches);
    }
}
