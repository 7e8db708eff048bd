using System.Diagnostics;
using Connectias.Sandbox.Contracts;
using Connectias.Sandbox.TestSupport;
using Grpc.Core;
using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace Connectias.Sandbox.Benchmarks;

/// <summary>
/// Execute of the no-op plugin through a real daemon and worker (two gRPC hops) next to the floor of
/// one hop: a bare gRPC echo over a Unix socket, served by this process with the same stack.
/// </summary>
internal static class ThroughDaemon
{
    private const int SequentialCalls = 5_000;
    private const int ConcurrentCallers = 32;
    private static readonly TimeSpan ConcurrentWindow = TimeSpan.FromSeconds(4);

    public static async Task RunAsync()
    {
        var work = Directory.CreateTempSubdirectory("connectias-bench-").FullName;
        try
        {
            var (echoP50, echoP99, echoRate) = await MeasureEchoAsync(Path.Combine(work, "echo.sock"));
            // No policy file: the built-in policy, as an operator who wrote none gets.
            using var daemon = DaemonProcess.Start(new DaemonStartInfo { PolicyJson = null });
            await MeasureDaemonAsync(daemon, echoP50, echoP99, echoRate);
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }

    private static async Task MeasureDaemonAsync(DaemonProcess daemon, double echoP50, double echoP99, double echoRate)
    {
        {
            using var client = daemon.Client();

            var loadTimes = new List<double>();
            for (var i = 0; i < 5; i++)
            {
                var package = daemon.Package("noop", $"com.bench.load{i}");
                var clock = Stopwatch.StartNew();
                await client.LoadAsync(package);
                loadTimes.Add(clock.Elapsed.TotalMilliseconds);
                await client.UnloadAsync($"com.bench.load{i}");
            }

            for (var p = 0; p < 4; p++) await client.LoadAsync(daemon.Package("noop", $"com.bench.noop{p}"));
            await Task.Delay(TimeSpan.FromSeconds(1.5)); // idle, and sampled by the daemon's monitor
            var idleRss = (await client.GetAsync("com.bench.noop0")).Usage.WorkerRssBytes;

            var latencies = new double[SequentialCalls];
            for (var i = 0; i < 500; i++) await client.ExecuteAsync("com.bench.noop0", "run");
            for (var i = 0; i < SequentialCalls; i++)
            {
                var start = Stopwatch.GetTimestamp();
                await client.ExecuteAsync("com.bench.noop0", "run");
                latencies[i] = Stopwatch.GetElapsedTime(start).TotalMicroseconds;
            }

            Array.Sort(latencies);
            var (p50, p99) = (latencies[SequentialCalls / 2], latencies[SequentialCalls * 99 / 100]);
            var rate = await ConcurrentRateAsync(async (caller, i) => await client.ExecuteAsync($"com.bench.noop{caller % 4}", "run"));
            var oneplugin = await ConcurrentRateAsync(async (_, _) => await client.ExecuteAsync("com.bench.noop0", "run"));

            Console.WriteLine($"Through gRPC ({SequentialCalls:N0} sequential calls; {ConcurrentCallers} concurrent callers for {ConcurrentWindow.TotalSeconds:N0} s):");
            Console.WriteLine($"  {"bare gRPC echo, Unix socket (one hop)",-48} p50 {echoP50,7:N0} us  p99 {echoP99,7:N0} us  {echoRate,8:N0} calls/s");
            Console.WriteLine($"  {"Execute no-op via daemon + worker (two hops)",-48} p50 {p50,7:N0} us  p99 {p99,7:N0} us  {rate,8:N0} calls/s (4 plugins)");
            Console.WriteLine($"  {"  same, all 32 callers on one plugin (queued)",-48} {"",26}  {oneplugin,8:N0} calls/s");
            Console.WriteLine($"  {"ratio daemon / echo",-48} p50 {p50 / echoP50,7:N2}x  p99 {p99 / echoP99,7:N2}x   throughput {rate / echoRate,6:P0} of echo");
            Console.WriteLine($"  LoadPlugin, signed ZIP to READY (median of 5):  {loadTimes.Order().ElementAt(2),7:N0} ms   (min {loadTimes.Min():N0}, max {loadTimes.Max():N0})");
            Console.WriteLine($"  idle worker RSS (no-op plugin):                 {idleRss / 1024.0 / 1024.0,7:N1} MiB");
            Console.WriteLine($"  worker sandbox: {(File.Exists("/usr/bin/bwrap") ? "bubblewrap, if it works here (see the daemon's log)" : "plain child process")}");
        }
    }

    private static async Task<(double P50, double P99, double Rate)> MeasureEchoAsync(string socket)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.Services.AddGrpc();
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.ListenUnixSocket(socket, listen => listen.Protocols = HttpProtocols.Http2));
        await using var app = builder.Build();
        app.MapGrpcService<EchoService>();
        await app.StartAsync();

        using var channel = UnixSocketChannel.Create(socket);
        var echo = new Echo.EchoClient(channel);
        var request = new EchoMessage { Command = "run" };
        for (var i = 0; i < 500; i++) await echo.EchoAsync(request);
        var latencies = new double[SequentialCalls];
        for (var i = 0; i < SequentialCalls; i++)
        {
            var start = Stopwatch.GetTimestamp();
            await echo.EchoAsync(request);
            latencies[i] = Stopwatch.GetElapsedTime(start).TotalMicroseconds;
        }

        Array.Sort(latencies);
        var rate = await ConcurrentRateAsync(async (_, _) => await echo.EchoAsync(request));
        await app.StopAsync();
        return (latencies[SequentialCalls / 2], latencies[SequentialCalls * 99 / 100], rate);
    }

    private static async Task<double> ConcurrentRateAsync(Func<int, int, Task> call)
    {
        var completed = 0L;
        var clock = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, ConcurrentCallers).Select(caller => Task.Run(async () =>
        {
            for (var i = 0; clock.Elapsed < ConcurrentWindow; i++)
            {
                await call(caller, i);
                Interlocked.Increment(ref completed);
            }
        })));
        return completed / clock.Elapsed.TotalSeconds;
    }

    private sealed class EchoService : Echo.EchoBase
    {
        public override Task<EchoMessage> Echo(EchoMessage request, ServerCallContext context) => Task.FromResult(request);
    }
}
