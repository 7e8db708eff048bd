using System.Diagnostics;
using System.Text.RegularExpressions;
using Connectias.Sandbox.Benchmarks;
using Connectias.Sandbox.TestSupport;

// One command prints every figure: the worker's in-process cost of a call, then the path through real
// daemons against a bare gRPC echo served by this process, load times, and the memory and CPU the
// workers hold. Each section echoes its figures as it goes; the table at the end has them all.
var noop = SamplePlugins.Wasm("noop");
var debug = typeof(InProcess).Assembly.GetCustomAttributes(false).OfType<DebuggableAttribute>().Any(a => a.IsJITOptimizerDisabled);
Console.WriteLine($"Connectias Sandbox benchmark - {Environment.ProcessorCount} cores, .NET {Environment.Version}, " +
                  $"{(debug ? "DEBUG build: figures are not representative" : "Release build")}");
var total = Stopwatch.StartNew();
var table = new FigureTable();

InProcess.Run(noop, table);
var echo = await EchoBaseline.MeasureAsync(table);
string sandbox;
// No policy file: the built-in policy, as an operator who wrote none gets; every other setting its default.
using (var daemon = DaemonProcess.Start(new DaemonStartInfo { PolicyJson = null }))
{
    sandbox = Regex.Match(daemon.Log, "worker sandbox: (bubblewrap|plain child process)") is { Success: true } match ? match.Groups[1].Value : "unknown (no log line)";
    await CallsThroughDaemon.RunAsync(daemon, echo, table);
    await IdleWorker.RunAsync(daemon, table);
}

Console.WriteLine();
Console.WriteLine($"Summary ({total.Elapsed.TotalSeconds:N0} s; worker sandbox: {sandbox}):");
Console.WriteLine();
table.Print();
return 0;
