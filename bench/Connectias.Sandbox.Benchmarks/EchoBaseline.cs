using System.Diagnostics;
using Grpc.Core;
using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace Connectias.Sandbox.Benchmarks;

/// <summary>The echo's latency percentiles (µs) and its throughput with <see cref="ConcurrentCallers.Callers"/> callers.</summary>
internal sealed record EchoFigures(double P50, double P99, double Rate);

/// <summary>
/// The floor of one hop: a bare gRPC echo over a Unix socket, served by this process with the same stack
/// (Kestrel, Grpc.AspNetCore, the same Unix-socket channel) as the daemon and its workers.
/// </summary>
internal static class EchoBaseline
{
    public const int SequentialCalls = 5_000;

    public static async Task<EchoFigures> MeasureAsync(FigureTable table)
    {
        Console.WriteLine($"Bare gRPC echo ({SequentialCalls:N0} sequential calls; {ConcurrentCallers.Callers} callers for {ConcurrentCallers.Window.TotalSeconds:N0} s):");
        var work = Directory.CreateTempSubdirectory("connectias-bench-").FullName;
        try
        {
            var socket = Path.Combine(work, "echo.sock");
            var builder = WebApplication.CreateSlimBuilder();
            builder.Logging.ClearProviders();
            builder.Services.AddGrpc();
            builder.WebHost.ConfigureKestrel(kestrel => kestrel.ListenUnixSocket(socket, listen => listen.Protocols = HttpProtocols.Http2));
            await using var app = builder.Build();
            app.MapGrpcService<EchoService>();
            await app.StartAsync();

            using var channel = Connectias.Sandbox.Contracts.UnixSocketChannel.Create(socket);
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

            var rate = await ConcurrentCallers.RateAsync(async _ => await echo.EchoAsync(request));
            await app.StopAsync();

            var figures = new EchoFigures(Percentile.Of(latencies, 0.5), Percentile.Of(latencies, 0.99), rate);
            table.Add(new Figure("1", "bare gRPC echo, Unix socket, sequential", $"p50 {Show.Us(figures.P50)}, p99 {Show.Us(figures.P99)}", "1.00x (baseline)"));
            table.Add(new Figure("2", $"bare gRPC echo, {ConcurrentCallers.Callers} callers", Show.Rate(rate), "100% (baseline)"));
            return figures;
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }

    private sealed class EchoService : Echo.EchoBase
    {
        public override Task<EchoMessage> Echo(EchoMessage request, ServerCallContext context) => Task.FromResult(request);
    }
}
