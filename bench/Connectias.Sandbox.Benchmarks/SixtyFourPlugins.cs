using System.Diagnostics;
using Connectias.Sandbox.V1;
using Connectias.Sandbox.TestSupport;

namespace Connectias.Sandbox.Benchmarks;

/// <summary>
/// A full daemon: 64 no-op plugins, each in its own worker. How long loading them takes, the memory the
/// whole process tree holds, and a call to each with that many workers around.
/// </summary>
internal static class SixtyFourPlugins
{
    private const int Plugins = 64;
    private static readonly TimeSpan Settle = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan CpuWindow = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Loading stops here even short of 64, so that the whole benchmark stays within minutes: with idle
    /// workers that each take CPU, every load is slower than the last on a small machine.
    /// </summary>
    private static readonly TimeSpan LoadBudget = TimeSpan.FromSeconds(75);

    public static async Task RunAsync(FigureTable table)
    {
        Console.WriteLine($"{Plugins} plugins (loaded one after the other, each LoadPlugin awaited before the next):");
        // MaxPlugins above 64 so that the figure is 64 plugins whatever a pool of warm workers counts against it.
        using var daemon = DaemonProcess.Start(new DaemonStartInfo { PolicyJson = null, Settings = [("MaxPlugins", "128")] });
        using var client = daemon.Client();
        var ids = Enumerable.Range(0, Plugins).Select(p => $"com.bench.many{p:D2}").ToArray();
        var packages = ids.Select(id => daemon.Package("noop", id)).ToArray(); // signed before the clock

        var clock = Stopwatch.StartNew();
        var loaded = 0;
        var stopped = "";
        try
        {
            foreach (var package in packages)
            {
                if (clock.Elapsed > LoadBudget)
                {
                    stopped = $"{LoadBudget.TotalSeconds:N0} s budget spent";
                    Console.WriteLine($"  warning: stopped loading after {loaded} of {Plugins}: {stopped}");
                    break;
                }

                await client.LoadAsync(package);
                loaded++;
            }
        }
        catch (SandboxException e)
        {
            // Say so and measure what did load: a benchmark that dies after minutes shows nothing.
            stopped = $"load {loaded + 1} failed: {e.Reason}";
            Console.WriteLine($"  warning: load {loaded + 1} of {Plugins} failed: {e.Message}");
        }

        var loadAll = clock.Elapsed;
        table.Add(new Figure("5", $"load {Plugins} plugins, sequentially", loaded == Plugins ? $"{loadAll.TotalSeconds:N1} s" : $"only {loaded} in {loadAll.TotalSeconds:N1} s ({stopped})",
            $"{Show.Ms(loadAll.TotalMilliseconds / Math.Max(1, loaded))} per plugin"));

        await Task.Delay(Settle);
        var workers = (await client.ListAsync()).Where(plugin => plugin.State == PluginState.Ready && ids.Contains(plugin.PluginId)).Select(plugin => plugin.Pid).ToList();
        if (workers.Count != Plugins) Console.WriteLine($"  warning: {workers.Count} of {Plugins} plugins are READY with a worker");
        if (workers.Count == 0) return;
        var workersRss = workers.Sum(ProcFs.RssBytes);
        var workersPss = workers.Sum(ProcFs.PssBytes);
        // Bubblewrap leaves two small processes above each worker (its own, and the new PID namespace's init);
        // a pool may hold started workers too. They are part of what the daemon costs, so the totals count them.
        var others = ProcFs.Descendants(daemon.Pid).Except(workers).ToList();
        var othersRss = others.Sum(pid => ProcFs.OrZero(ProcFs.RssBytes, pid));
        var othersPss = others.Sum(pid => ProcFs.OrZero(ProcFs.PssBytes, pid));
        var (daemonRss, daemonPss) = (ProcFs.RssBytes(daemon.Pid), ProcFs.PssBytes(daemon.Pid));
        var totalRss = workersRss + othersRss + daemonRss;
        var totalPss = workersPss + othersPss + daemonPss;

        table.Add(new Figure("5", $"{workers.Count} workers, sum of RSS / PSS", $"{Show.MiB(workersRss)} / {Show.MiB(workersPss)}", $"{Show.MiB(workersRss / workers.Count)} / {Show.MiB(workersPss / workers.Count)} per worker"));
        table.Add(new Figure("5", $"their {others.Count} other processes (bubblewrap, pool), RSS / PSS", $"{Show.MiB(othersRss)} / {Show.MiB(othersPss)}", ""));
        table.Add(new Figure("5", "the daemon itself, RSS / PSS", $"{Show.MiB(daemonRss)} / {Show.MiB(daemonPss)}", ""));
        AddTotal(table, "RSS", workers.Count, totalRss, daemonRss);
        AddTotal(table, "PSS", workers.Count, totalPss, daemonPss);

        // Idle workers cost CPU too, and 64 of them share the same cores.
        var ticksBefore = workers.Sum(pid => ProcFs.OrZero(ProcFs.CpuTicks, pid));
        var cpuClock = Stopwatch.StartNew();
        await Task.Delay(CpuWindow);
        var cpuShare = (workers.Sum(pid => ProcFs.OrZero(ProcFs.CpuTicks, pid)) - ticksBefore) / (double)ProcFs.TicksPerSecond / cpuClock.Elapsed.TotalSeconds;
        table.Add(new Figure("5", $"{workers.Count} idle workers, CPU over {CpuWindow.TotalSeconds:N0} s", Show.PercentOfCore(cpuShare), $"{Show.PercentOfCore(cpuShare / workers.Count)} per worker"));

        // The first round is each worker's first Execute (its call path not yet run, let alone JIT-compiled);
        // the second shows the same round once every worker has run it.
        foreach (var round in new[] { "first", "second" })
        {
            var latencies = new List<double>();
            foreach (var id in ids.Take(workers.Count))
            {
                var start = Stopwatch.GetTimestamp();
                await client.ExecuteAsync(id, "run");
                latencies.Add(Stopwatch.GetElapsedTime(start).TotalMicroseconds);
            }

            table.Add(new Figure("5", $"one Execute to each of the {workers.Count}, {round} round", $"median {Show.Us(Percentile.Of(latencies, 0.5))}, max {Show.Us(latencies.Max())}", ""));
        }
    }

    /// <summary>The total against the goal; with fewer than 64 loaded, also projected to 64 (the daemon once, each worker's share 64 times).</summary>
    private static void AddTotal(FigureTable table, string kind, int workers, long total, long daemonShare)
    {
        table.Add(new Figure("5", $"total {kind} (workers + others + daemon)", Show.GiB(total), $"{Show.Times(total / (double)Goals.SixtyFourPluginsTotalBytes)} goal",
            $"<= {Show.GiB(Goals.SixtyFourPluginsTotalBytes)}", workers == Plugins ? total <= Goals.SixtyFourPluginsTotalBytes : null));
        if (workers is 0 or Plugins) return;
        var projected = daemonShare + (total - daemonShare) * Plugins / workers;
        table.Add(new Figure("5", $"  projected to {Plugins} from {workers}", Show.GiB(projected), $"{Show.Times(projected / (double)Goals.SixtyFourPluginsTotalBytes)} goal",
            $"<= {Show.GiB(Goals.SixtyFourPluginsTotalBytes)}", projected <= Goals.SixtyFourPluginsTotalBytes));
    }
}
