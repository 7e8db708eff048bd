using System.Diagnostics;
using Connectias.Sandbox.Runtime;
using Wasmtime;

// The worker-side cost of one Execute (fuel refill, deadline, input copy, output copy, fault checks)
// next to the floor: a bare typed Wasmtime call of the same plugin_execute in a store with no limits.
const int Rounds = 7;
const int CallsPerRound = 200_000;
var noop = File.ReadAllBytes(Path.Combine(AppContext.BaseDirectory, "plugins", "noop.wasm"));

Console.WriteLine($"Connectias Sandbox in-process benchmark: {Rounds} rounds x {CallsPerRound:N0} calls, median per call");
Console.WriteLine($"machine: {Environment.ProcessorCount} cores, .NET {Environment.Version}, {(Debugger.IsAttached ? "debugger" : "no debugger")}, " +
                  $"{(typeof(Program).Assembly.GetCustomAttributes(false).OfType<DebuggableAttribute>().Any(a => a.IsJITOptimizerDisabled) ? "DEBUG build (numbers are not representative)" : "optimised build")}");

using var bareEngine = new Engine();
using var bareModule = Module.FromBytes(bareEngine, "noop", noop);
using var bareLinker = new Linker(bareEngine);
using var bareStore = new Store(bareEngine);
var bareExecute = bareLinker.Instantiate(bareStore, bareModule).GetFunction<int, int, int, int, int>("plugin_execute")!;
var bare = Measure(() => bareExecute(0, 0, 0, 0));

using var engine = new WasmEngine();
using var plugin = PluginInstance.Load(engine, new PluginSetup { PluginId = "com.example.noop", Module = noop });
var empty = Measure(() => plugin.Execute("run", []));
var kilobyte = new byte[1024];
var withArgs = Measure(() => plugin.Execute("run", kilobyte));

Report("bare Wasmtime call of plugin_execute", bare, bare);
Report("PluginInstance.Execute, no args", empty, bare);
Report("PluginInstance.Execute, 1 KiB args", withArgs, bare);
Console.WriteLine($"{"reference: one gRPC hop, Unix socket (DESIGN.md)",-44} {180_000.0,10:N0} ns/call");
Console.WriteLine($"Execute overhead beyond the bare call is {(empty.Nanoseconds - bare.Nanoseconds) / 180_000.0:P2} of one gRPC hop");
return 0;

static (double Nanoseconds, double AllocatedBytes) Measure(Action call)
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

static void Report(string name, (double Nanoseconds, double AllocatedBytes) figures, (double Nanoseconds, double AllocatedBytes) baseline) =>
    Console.WriteLine($"{name,-44} {figures.Nanoseconds,10:N0} ns/call  {figures.Nanoseconds / baseline.Nanoseconds,6:N1}x bare  {figures.AllocatedBytes,7:N0} B allocated/call");
