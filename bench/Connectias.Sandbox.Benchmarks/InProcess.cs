using System.Diagnostics;
using Connectias.Sandbox.Runtime;

namespace Connectias.Sandbox.Benchmarks;

/// <summary>The worker-side cost of one Execute next to a bare typed Wasmtime call of the same function.</summary>
internal static class InProcess
{
    private const int Rounds = 7;
    private const int CallsPerRound = 200_000;

    public static void Run(byte[] noop, FigureTable table)
    {
        Console.WriteLine($"In process ({Rounds} rounds x {CallsPerRound:N0} calls, median round):");
        using var bareEngine = new Wasmtime.Engine();
        using var bareModule = Wasmtime.Module.FromBytes(bareEngine, "noop", noop);
        using var bareLinker = new Wasmtime.Linker(bareEngine);
        using var bareStore = new Wasmtime.Store(bareEngine);
        var bareExecute = bareLinker.Instantiate(bareStore, bareModule).GetFunction<int, int, int, int, int>("plugin_execute")!;
        var bare = Measure(() => bareExecute(0, 0, 0, 0));

        using var engine = new WasmEngine();
        using var plugin = PluginInstance.Load(engine, new PluginSetup { PluginId = "com.example.noop", Module = noop });
        var empty = Measure(() => plugin.Execute("run", []));
        var kilobyte = new byte[1024];
        var withArgs = Measure(() => plugin.Execute("run", kilobyte));

        Report(table, "bare Wasmtime call of plugin_execute", bare, bare);
        Report(table, "PluginInstance.Execute, no args", empty, bare);
        Report(table, "PluginInstance.Execute, 1 KiB args", withArgs, bare);
    }

    private static (double Nanoseconds, double AllocatedBytes) Measure(Action call)
    {
        for (var i = 0; i < 20_000; i++) call(); // JIT tiers, caches
        var perRound = new List<(double, double)>();
        for (var round = 0; round < Rounds; round++)
        {
            var allocatedBefore = GC.GetAllocatedBytesForCurrentThread();
            var clock = Stopwatch.StartNew();
            for (var i = 0; i < CallsPerRound; i++) call();
            clock.Stop();
            perRound.Add((clock.Elapsed.TotalNanoseconds / CallsPerRound, (GC.GetAllocatedBytesForCurrentThread() - allocatedBefore) / (double)CallsPerRound));
        }

        return perRound.OrderBy(r => r.Item1).ElementAt(Rounds / 2);
    }

    private static void Report(FigureTable table, string name, (double Nanoseconds, double AllocatedBytes) figures, (double Nanoseconds, double AllocatedBytes) bare) =>
        table.Add(new Figure("0", name, $"{Show.Ns(figures.Nanoseconds)}, {figures.AllocatedBytes:N0} B allocated", $"{Show.Times(figures.Nanoseconds / bare.Nanoseconds)} bare"));
}
