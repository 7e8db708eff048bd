using System.Diagnostics;
using Connectias.Sandbox.TestSupport;

namespace Connectias.Sandbox.Benchmarks;

/// <summary>
/// What one loaded plugin costs while nobody calls it: its worker's resident memory and CPU, read from
/// /proc for the pid ListPlugins reports (inside bubblewrap the worker itself, not bubblewrap).
/// </summary>
internal static class IdleWorker
{
    private const string Id = "com.bench.idle";
    private static readonly TimeSpan Settle = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan CpuWindow = TimeSpan.FromSeconds(5);

    public static async Task RunAsync(DaemonProcess daemon, FigureTable table)
    {
        Console.WriteLine($"Idle worker (a few calls, {Settle.TotalSeconds:N0} s to settle, CPU over {CpuWindow.TotalSeconds:N0} s):");
        using var client = daemon.Client();
        await client.LoadAsync(daemon.Package("noop", Id));
        for (var i = 0; i < 10; i++) await client.ExecuteAsync(Id, "run");
        var pid = (await client.ListAsync()).Single(plugin => plugin.PluginId == Id).Pid;
        var program = ProcFs.CommandLine(pid);
        if (!program.Contains("connectias-sandbox-worker", StringComparison.Ordinal))
            Console.WriteLine($"  warning: pid {pid} is not the worker but '{program}': the figures below are that process's");

        await Task.Delay(Settle);
        var rss = ProcFs.RssBytes(pid);
        var ticksBefore = ProcFs.CpuTicks(pid);
        var clock = Stopwatch.StartNew();
        await Task.Delay(CpuWindow);
        var ticks = ProcFs.CpuTicks(pid) - ticksBefore;
        var cpuShare = ticks / (double)ProcFs.TicksPerSecond / clock.Elapsed.TotalSeconds;

        table.Add(new Figure("4", "idle worker RSS (VmRSS), no-op plugin", Show.MiB(rss), $"{Show.Times(rss / (double)Goals.IdleWorkerRssBytes)} goal",
            $"<= {Show.MiB(Goals.IdleWorkerRssBytes)}", rss <= Goals.IdleWorkerRssBytes));
        // One tick is 10 ms: over 5 s the resolution is 0.2% of a core.
        table.Add(new Figure("4", $"idle worker CPU over {CpuWindow.TotalSeconds:N0} s (utime+stime)", $"{Show.PercentOfCore(cpuShare)} ({ticks} ticks)",
            $"{Show.Times(cpuShare / Goals.IdleWorkerCpuShare)} goal", $"<= {Show.PercentOfCore(Goals.IdleWorkerCpuShare)}", cpuShare <= Goals.IdleWorkerCpuShare));
        await client.UnloadAsync(Id);
    }
}
