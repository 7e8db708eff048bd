using System.Diagnostics;
using System.Text.RegularExpressions;
using Connectias.Sandbox.Benchmarks;
using Connectias.Sandbox.TestSupport;

// One command prints every figure: the worker's in-process cost of a call (0), the path through a real
// daemon against a bare gRPC echo served by this process (1, 2), load times (3), an idle worker (4) and
// a daemon with 64 plugins (5). Each section echoes its figures as it goes; the table at the end has them
// all. Arguments, if any, are the sections to run (e.g. `-- 3 5`), for a quick look at one figure.
var sections = args.Length == 0 ? [0, 1, 2, 3, 4, 5] : args.Select(int.Parse).ToHashSet();
var noop = SamplePlugins.Wasm("noop");
var debug = typeof(InProcess).Assembly.GetCustomAttributes(false).OfType<DebuggableAttribute>().Any(a => a.IsJITOptimizerDisabled);
Console.WriteLine($"Connectias Sandbox benchmark - {Environment.ProcessorCount} cores, .NET {Environment.Version}, " +
                  $"{(debug ? "DEBUG build: figures are not representative" : "Release build")}, sections {string.Join(' ', sections.Order())}");
var total = Stopwatch.StartNew();
var table = new FigureTable();

if (sections.Contains(0)) InProcess.Run(noop, table);
var sandbox = "not started";
if (sections.Overlaps([1, 2, 4]))
{
    // Sections 1 and 2 are ratios to the echo; 4 shares their daemon.
    var echo = sections.Overlaps([1, 2]) ? await EchoBaseline.MeasureAsync(table) : null;
    // No policy file: the built-in policy, as an operator who wrote none gets; every other setting its default.
    using var daemon = DaemonProcess.Start(new DaemonStartInfo { PolicyJson = null });
    sandbox = Regex.Match(daemon.Log, "worker sandbox: (bubblewrap|plain child process)") is { Success: true } match ? match.Groups[1].Value : "unknown (no log line)";
    if (echo is not null) await CallsThroughDaemon.RunAsync(daemon, echo, table);
    if (sections.Contains(4)) await IdleWorker.RunAsync(daemon, table);
}

if (sections.Contains(3)) await LoadTimes.RunAsync(table);
if (sections.Contains(5)) await SixtyFourPlugins.RunAsync(table);

Console.WriteLine();
Console.WriteLine($"Summary ({total.Elapsed.TotalSeconds:N0} s; worker sandbox: {sandbox}; machine load average {File.ReadAllText("/proc/loadavg").Split(' ')[0]}):");
Console.WriteLine();
table.Print();
return 0;
