using System.Diagnostics;
using Connectias.Sandbox.TestSupport;

namespace Connectias.Sandbox.Benchmarks;

/// <summary>
/// Execute of the no-op plugin through a real daemon and its workers (client → daemon → worker: two
/// hops), sequentially and under load, each against the echo measured the same way.
/// </summary>
internal static class CallsThroughDaemon
{
    private const int Plugins = 4;

    public static async Task RunAsync(DaemonProcess daemon, EchoFigures echo, FigureTable table)
    {
        Console.WriteLine($"Execute through the daemon ({EchoBaseline.SequentialCalls:N0} sequential calls; {ConcurrentCallers.Callers} callers for {ConcurrentCallers.Window.TotalSeconds:N0} s):");
        using var client = daemon.Client();
        var ids = Enumerable.Range(0, Plugins).Select(p => $"com.bench.noop{p}").ToArray();
        foreach (var id in ids) await client.LoadAsync(daemon.Package("noop", id));

        for (var i = 0; i < 500; i++) await client.ExecuteAsync(ids[0], "run"); // JIT tiers on both sides of both hops
        var latencies = new double[EchoBaseline.SequentialCalls];
        for (var i = 0; i < latencies.Length; i++)
        {
            var start = Stopwatch.GetTimestamp();
            await client.ExecuteAsync(ids[0], "run");
            latencies[i] = Stopwatch.GetElapsedTime(start).TotalMicroseconds;
        }

        var (p50, p99) = (Percentile.Of(latencies, 0.5), Percentile.Of(latencies, 0.99));
        table.Add(new Figure("1", "Execute no-op via daemon + worker, sequential", $"p50 {Show.Us(p50)}, p99 {Show.Us(p99)}",
            $"p50 {Show.Times(p50 / echo.P50)}, p99 {Show.Times(p99 / echo.P99)} echo",
            $"p50 <= {Goals.ExecuteP50OverEcho:N1}x echo", p50 / echo.P50 <= Goals.ExecuteP50OverEcho));

        // Caller c always calls plugin c % 4: 8 callers per plugin, whose calls the daemon runs one at a time (SPEC §2).
        var spread = await ConcurrentCallers.RateAsync(async caller => await client.ExecuteAsync(ids[caller % Plugins], "run"));
        table.Add(new Figure("2", $"Execute, {ConcurrentCallers.Callers} callers over {Plugins} plugins", Show.Rate(spread), $"{Show.Percent(spread / echo.Rate)} of echo",
            $">= {Show.Percent(Goals.FourPluginShareOfEcho)} of echo", spread / echo.Rate >= Goals.FourPluginShareOfEcho));
        var single = await ConcurrentCallers.RateAsync(async _ => await client.ExecuteAsync(ids[0], "run"));
        table.Add(new Figure("2", $"Execute, {ConcurrentCallers.Callers} callers on 1 plugin (queued)", Show.Rate(single), $"{Show.Percent(single / echo.Rate)} of echo"));

        foreach (var id in ids) await client.UnloadAsync(id);
    }
}
