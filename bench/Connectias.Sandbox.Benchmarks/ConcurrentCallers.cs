using System.Diagnostics;

namespace Connectias.Sandbox.Benchmarks;

/// <summary>The same closed-loop load for the echo and for the daemon, so their throughputs compare.</summary>
internal static class ConcurrentCallers
{
    public const int Callers = 32;
    public static readonly TimeSpan Window = TimeSpan.FromSeconds(4);

    /// <summary>Calls/s of <see cref="Callers"/> callers, each calling again as soon as its call returns, for <see cref="Window"/>.</summary>
    public static async Task<double> RateAsync(Func<int, Task> call)
    {
        var completed = 0L;
        var clock = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, Callers).Select(caller => Task.Run(async () =>
        {
            while (clock.Elapsed < Window)
            {
                await call(caller);
                Interlocked.Increment(ref completed);
            }
        })));
        return completed / clock.Elapsed.TotalSeconds;
    }
}
