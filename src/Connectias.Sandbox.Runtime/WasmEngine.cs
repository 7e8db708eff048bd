using System.Globalization;
using Wasmtime;

namespace Connectias.Sandbox.Runtime;

/// <summary>
/// The Wasmtime engine shared by the plugins of one process, configured for fuel and epoch interruption, and
/// the ticker that advances its epoch. Each store sets its own epoch deadline and callback, so a deadline that
/// stops one plugin never touches another. The ticker runs only while some plugin's code does: an idle process
/// has no timer at all.
/// </summary>
public sealed class WasmEngine : IDisposable
{
    /// <summary>How often the epoch advances while code runs: the granularity of deadlines and memory checks.</summary>
    public static readonly TimeSpan EpochTick = TimeSpan.FromMilliseconds(5);

    // What, besides the Wasmtime version, decides whether compiled code fits this engine; part of Fingerprint.
    private const string Settings = "fuel,epoch,opt=speed,capped-memory";

    private readonly Timer _ticker;
    private readonly Lock _sync = new();
    private int _running;
    private bool _ticking;
    private bool _ranSinceTick;

    public WasmEngine()
    {
        // Copy-on-write memory images are Wasmtime's own mmap-based memories: with CappedMemory's, data segments are copied.
        using var config = CappedMemory.Use(new Config())
            .WithMemoryInitCopyOnWrite(false)
            .WithFuelConsumption(true)
            .WithEpochInterruption(true)
            .WithOptimizationLevel(OptimizationLevel.Speed);
        Engine = new Engine(config);
        _ticker = new Timer(_ => Tick(), null, Timeout.Infinite, Timeout.Infinite);
    }

    public Engine Engine { get; }

    /// <summary>
    /// Names the Wasmtime version and the engine settings: compiled code is reusable exactly between engines with
    /// the same fingerprint. No '|' (it travels in the worker's handshake line).
    /// </summary>
    public static string Fingerprint { get; } = string.Create(CultureInfo.InvariantCulture,
        $"wasmtime-{typeof(Engine).Assembly.GetName().Version}+{Settings}");

    /// <summary>Plugin code is about to run: the epoch ticks at least until the matching <see cref="EndRunning"/>.</summary>
    internal void BeginRunning()
    {
        lock (_sync)
        {
            _running++;
            _ranSinceTick = true;
            if (_ticking) return;
            _ticking = true;
            _ticker.Change(EpochTick, EpochTick);
        }
    }

    internal void EndRunning()
    {
        lock (_sync) _running--;
    }

    /// <summary>
    /// The ticker stops itself at the first tick that finds nothing running and nothing run since the tick before:
    /// an idle process has no timer, and calls that follow each other closely do not pay to stop and start it.
    /// </summary>
    private void Tick()
    {
        Engine.IncrementEpoch();
        lock (_sync)
        {
            if (_running == 0 && !_ranSinceTick && _ticking)
            {
                _ticking = false;
                _ticker.Change(Timeout.Infinite, Timeout.Infinite);
            }

            _ranSinceTick = false;
        }
    }

    /// <summary>
    /// Compiles (and so validates) a module; one that does not validate is CORRUPTED_DATA, one that validates but cannot
    /// be compiled (memory ran out under the worker's cap) RESOURCE_EXHAUSTED.
    /// </summary>
    public CompiledModule Compile(string pluginId, ReadOnlySpan<byte> module)
    {
        try
        {
            return new CompiledModule(Module.FromBytes(Engine, pluginId, module));
        }
        catch (WasmtimeException e)
        {
            // A module that validates but does not compile ran out of something: memory under the worker's cap, say.
            if (Module.Validate(Engine, module) is null)
            {
                throw new SandboxException(ErrorReason.ResourceExhausted, $"the module validates but could not be compiled within the worker's limits: {PluginFaults.FirstLine(e.Message)}",
                    ErrorMetadata.For(pluginId));
            }

            throw new SandboxException(ErrorReason.CorruptedData, $"module does not validate: {PluginFaults.FirstLine(e.Message)}", ErrorMetadata.For(pluginId));
        }
    }

    /// <summary>
    /// Loads code an earlier <see cref="CompiledModule.Serialize"/> of an engine with the same
    /// <see cref="Fingerprint"/> produced. Wasmtime trusts these bytes completely: the caller must have
    /// authenticated them. Null when Wasmtime refuses them (another version or settings).
    /// </summary>
    public CompiledModule? Deserialize(string pluginId, ReadOnlySpan<byte> compiled)
    {
        try
        {
            return new CompiledModule(Module.Deserialize(Engine, pluginId, compiled));
        }
        catch (WasmtimeException)
        {
            return null;
        }
    }

    public void Dispose()
    {
        _ticker.Dispose();
        Engine.Dispose();
    }
}

/// <summary>A module compiled for one <see cref="WasmEngine"/>; owned by the plugin loaded from it.</summary>
public sealed class CompiledModule : IDisposable
{
    internal CompiledModule(Module module) => Module = module;

    internal Module Module { get; }

    /// <summary>The compiled code, for a cache; only an engine with the same fingerprint can load it.</summary>
    public byte[] Serialize() => Module.Serialize();

    public void Dispose() => Module.Dispose();
}
