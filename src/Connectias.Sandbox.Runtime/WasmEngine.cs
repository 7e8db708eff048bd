using Wasmtime;

namespace Connectias.Sandbox.Runtime;

/// <summary>
/// The Wasmtime engine shared by the plugins of one process, configured for fuel and epoch
/// interruption, and the ticker that advances its epoch. Each store sets its own epoch deadline and
/// callback, so a deadline that stops one plugin never touches another.
/// </summary>
public sealed class WasmEngine : IDisposable
{
    /// <summary>How often the epoch advances: the granularity of deadlines and memory checks.</summary>
    public static readonly TimeSpan EpochTick = TimeSpan.FromMilliseconds(5);

    private readonly Timer _ticker;

    public WasmEngine()
    {
        using var config = new Config()
            .WithFuelConsumption(true)
            .WithEpochInterruption(true)
            .WithOptimizationLevel(OptimizationLevel.Speed);
        Engine = new Engine(config);
        _ticker = new Timer(_ => Engine.IncrementEpoch(), null, EpochTick, EpochTick);
    }

    public Engine Engine { get; }

    public void Dispose()
    {
        _ticker.Dispose();
        Engine.Dispose();
    }
}
