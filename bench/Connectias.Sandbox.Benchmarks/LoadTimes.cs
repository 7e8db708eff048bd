using System.Diagnostics;
using Connectias.Sandbox.TestSupport;

namespace Connectias.Sandbox.Benchmarks;

/// <summary>
/// LoadPlugin of a signed no-op package until READY, on a daemon without a pool of warm workers or a
/// compiled-module cache (cold: every load starts a worker and compiles) and on one with the defaults
/// (warm: a started worker is waiting and the module was compiled before). The same procedure runs on
/// both, so only the settings differ.
/// </summary>
internal static class LoadTimes
{
    /// <summary>Timed loads per daemon; one more goes first untimed (see <see cref="MeasureAsync"/>).</summary>
    private const int Loads = 10;

    /// <summary>Between loads, so the daemon's pool has started a replacement worker before the next load.</summary>
    private static readonly TimeSpan PoolRefill = TimeSpan.FromSeconds(0.5);

    public static async Task RunAsync(FigureTable table)
    {
        Console.WriteLine($"LoadPlugin, signed ZIP to READY ({Loads} loads per daemon, {PoolRefill.TotalSeconds:N1} s apart):");
        const string coldWhat = "LoadPlugin cold (WarmWorkers=0, ModuleCacheMaxBytes=0)";
        try
        {
            Add(table, coldWhat, await MeasureAsync([("WarmWorkers", "0"), ("ModuleCacheMaxBytes", "0")]), Goals.ColdLoadMedianMs);
        }
        catch (InvalidOperationException e) when (e.Message.Contains("Sandbox:", StringComparison.Ordinal))
        {
            // A daemon without these settings refuses them at start (unknown settings stop it): say so, measure the rest.
            Console.WriteLine($"  warning: the cold daemon did not start: {e.Message.Split('\n').FirstOrDefault(line => line.Contains("Sandbox:", StringComparison.Ordinal))?.Trim()}");
            table.Add(new Figure("3", coldWhat, "not measured: the daemon refused the settings", "", $"median <= {Show.Ms(Goals.ColdLoadMedianMs)}"));
        }

        var warm = await MeasureAsync([]);
        Add(table, "LoadPlugin warm (defaults: warm workers, module cache)", warm, Goals.WarmLoadMedianMs);
    }

    private static async Task<double[]> MeasureAsync(IReadOnlyList<(string Name, string Value)> settings)
    {
        using var daemon = DaemonProcess.Start(new DaemonStartInfo { PolicyJson = null, Settings = settings });
        using var client = daemon.Client();
        // Signed before the clock starts. The same module every time, under a fresh id per load, so that a
        // module cache can hit while the registry never sees the same plugin twice.
        var packages = Enumerable.Range(0, Loads + 1).Select(i => (Id: $"com.bench.load{i}", Package: daemon.Package("noop", $"com.bench.load{i}"))).ToList();

        // The first load is not counted: it fills the module cache, and on both daemons it pays for the
        // first run of the daemon's load path and for reading the worker's files from disk.
        var times = new List<double>();
        await Task.Delay(PoolRefill);
        foreach (var (id, package) in packages)
        {
            var clock = Stopwatch.StartNew();
            await client.LoadAsync(package);
            var elapsed = clock.Elapsed.TotalMilliseconds;
            if (id != packages[0].Id) times.Add(elapsed);
            await client.UnloadAsync(id);
            await Task.Delay(PoolRefill);
        }

        return [.. times];
    }

    private static void Add(FigureTable table, string what, double[] times, double goalMs)
    {
        var median = Percentile.Of(times, 0.5);
        table.Add(new Figure("3", what, $"median {Show.Ms(median)}, p90 {Show.Ms(Percentile.Of(times, 0.9))} (min {Show.Ms(times.Min())}, max {Show.Ms(times.Max())})",
            $"{Show.Times(median / goalMs)} goal", $"median <= {Show.Ms(goalMs)}", median <= goalMs));
    }
}
