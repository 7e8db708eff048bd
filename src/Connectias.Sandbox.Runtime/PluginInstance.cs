using System.Diagnostics;
using System.Globalization;
using System.Text;
using Wasmtime;

namespace Connectias.Sandbox.Runtime;

/// <summary>
/// One loaded plugin: a Wasmtime store, its instance and the host functions of ABI v1. Not thread-safe:
/// calls must come one at a time (the worker queues them), as SPEC §2 promises plugins.
/// </summary>
public sealed class PluginInstance : IDisposable
{
    // The memory limit itself is CappedMemory's, which sees a refused growth; Wasmtime's limiter, which would
    // refuse silently, only stops what no plugin may have: more than wasm32's 4 GiB, more than one memory.
    private const long StoreMemoryCap = 4L * 1024 * 1024 * 1024;
    private const int MaxTableElements = 100_000;
    private const int MaxErrorMessageBytes = 64 * 1024;
    private const int WasiErrnoNotSupported = 58;

    private readonly WasmEngine _engine;
    private readonly PluginSetup _setup;
    private readonly Module _module;
    private readonly Linker _linker;
    private readonly Store _store;
    private readonly PluginLogWriter _log;
    private readonly PluginStorage? _storage;
    private readonly PluginFaults _faults;
    private readonly GuestMemory _guest;

    private Func<int, int, int, int, int>? _execute;
    private Func<int>? _cleanup;

    private long _deadline;
    private long _deadlineMs;
    private byte[]? _output;
    private string? _errorMessage;
    private SandboxException? _terminatedBy;
    private bool _cleanedUp;
    private long _refusedGrowth; // the size a growth past the limit asked for; 0 while none was refused
    private bool _refusedByProcessCap;

    private PluginInstance(WasmEngine engine, PluginSetup setup, Module module)
    {
        _engine = engine;
        _setup = setup;
        _module = module;
        _log = new PluginLogWriter(setup.Log, setup.Budgets);
        _faults = new PluginFaults(setup.PluginId, setup.Limits);
        _guest = new GuestMemory(setup.PluginId, CheckMemory);
        if (setup.Permissions.Contains(Permission.Storage))
        {
            if (setup.StorageDirectory is null) throw new ArgumentException("storage is granted but no storage directory was given", nameof(setup));
            _storage = new PluginStorage(setup.StorageDirectory, setup.Limits.StorageBytes, setup.Budgets.StorageMaxEntries);
        }

        _store = new Store(engine.Engine);
        _store.SetLimits(memorySize: StoreMemoryCap, tableElements: MaxTableElements, instances: 1, tables: 4, memories: 1);
        _store.SetWasiConfiguration(new WasiConfiguration()
            .WithArg(setup.PluginId)
            .WithStandardOutputCallback(bytes => _log.WriteStream(PluginLogSource.Stdout, bytes))
            .WithStandardErrorCallback(bytes => _log.WriteStream(PluginLogSource.Stderr, bytes)));
        _store.SetEpochDeadlineCallback(_ => OnEpochTick());

        _linker = new Linker(engine.Engine) { AllowShadowing = true };
        _linker.DefineWasi();
        // A host-side sleep would outlast the call's deadline (epochs interrupt only WebAssembly code).
        _linker.DefineFunction(AbiContract.WasiModule, "poll_oneoff", (int _, int _, int _, int _) => WasiErrnoNotSupported);
        // So would a flood of stdout on Wasmtime's output thread: the host takes fd_write itself, deadline and log budget checked.
        WasiOutput.Define(_linker, this);
        // Wasmtime's own proc_exit turns a code of 126 or more into an ordinary error (not an exit): any code is a
        // crash of the plugin, reported with its code.
        _linker.DefineFunction(AbiContract.WasiModule, "proc_exit", (int code) =>
        {
            throw new SandboxException(ErrorReason.PluginCrashed, $"plugin {PluginId} called proc_exit({code})",
                ErrorMetadata.For(PluginId, ("exit_code", code.ToString(CultureInfo.InvariantCulture))));
        });
        HostFunctions.Define(_linker, this);
    }

    public string PluginId => _setup.PluginId;
    public ResourceLimits Limits => _setup.Limits;
    public long MemoryBytes => _guest.Length;
    public long PeakMemoryBytes { get; private set; }
    public long FuelConsumedTotal { get; private set; }
    public long Calls { get; private set; }

    /// <summary>Set once a call ended in a way that terminates the plugin; later calls are refused.</summary>
    public SandboxException? TerminatedBy => _terminatedBy;

    internal PluginStorage? Storage => _storage;
    internal PluginLogWriter LogWriter => _log;
    internal INetworkBroker? NetworkBroker => _setup.NetworkBroker;

    /// <summary>A network request of the current call timed out (SPEC §3: the call may end as NETWORK_TIMEOUT).</summary>
    internal bool NetworkTimedOut { get; set; }

    /// <summary>
    /// Compiles (unless <see cref="PluginSetup.Compiled"/> is given) and checks the module, instantiates it and runs <c>_initialize</c> and <c>plugin_init</c>,
    /// all under one fuel budget and deadline. Throws a <see cref="SandboxException"/> with the SPEC reason.
    /// </summary>
    public static PluginInstance Load(WasmEngine engine, PluginSetup setup)
    {
        var module = (setup.Compiled ?? engine.Compile(setup.PluginId, setup.Module.Span)).Module;

        PluginInstance? instance = null;
        try
        {
            ModuleChecker.Check(module, setup);
            instance = new PluginInstance(engine, setup, module);
            instance.Start();
            return instance;
        }
        catch
        {
            if (instance is null) module.Dispose();
            else instance.Dispose();
            throw;
        }
    }

    private void Start()
    {
        foreach (var import in _module.Imports.Where(i => i.ModuleName == AbiContract.WasiModule))
        {
            if (_linker.GetFunction(_store, import.ModuleName, import.Name) is null)
                throw new SandboxException(ErrorReason.CorruptedData, $"module imports '{import.ModuleName}.{import.Name}', which WASI preview 1 does not define", ErrorMetadata.For(PluginId));
        }

        BeginBudget(null);
        try
        {
            var instance = _linker.Instantiate(_store, _module);
            _guest.Memory = instance.GetMemory(AbiContract.MemoryExport)!;
            CheckMemory();
            _guest.Alloc = instance.GetFunction<int, int>("connectias_alloc")!;
            _execute = instance.GetFunction<int, int, int, int, int>("plugin_execute")!;
            _guest.Free = instance.GetAction<int, int>("connectias_free");
            _cleanup = instance.GetFunction<int>("plugin_cleanup");
            instance.GetAction("_initialize")?.Invoke();
            var init = instance.GetFunction<int, int, int>("plugin_init");
            if (init is not null)
            {
                var context = _setup.ContextJson ?? PluginContextJson.Build(PluginId, _setup.Version, _setup.Permissions, Limits);
                var code = init(_guest.CopyIn(context), context.Length);
                CheckMemory();
                if (code != 0)
                {
                    throw new SandboxException(ErrorReason.InitFailed,
                        $"plugin_init returned {code}" + (_errorMessage is null ? "" : $": {_errorMessage}"),
                        ErrorMetadata.For(PluginId, ("plugin_code", code.ToString(CultureInfo.InvariantCulture))));
                }
            }

            CheckMemory();
        }
        catch (Exception e)
        {
            throw Classify(e);
        }
        finally
        {
            EndCall();
        }
    }

    /// <summary>
    /// Runs <c>plugin_execute</c> once with a fresh fuel budget and a deadline (the plugin's timeout or
    /// <paramref name="callerDeadline"/>, whichever is sooner). A non-zero return is <c>PLUGIN_ERROR</c> and
    /// leaves the plugin usable; fuel, memory, deadline, output limit and traps terminate it.
    /// </summary>
    public ExecutionResult Execute(string command, ReadOnlySpan<byte> args, TimeSpan? callerDeadline = null)
    {
        ThrowIfTerminated();
        if (_setup.DeclaredCommands is { } declared && !declared.Contains(command, StringComparer.Ordinal))
        {
            throw new SandboxException(ErrorReason.InvalidCommand,
                $"plugin {PluginId} declares no command '{command}'; it declares: {string.Join(", ", declared)}", ErrorMetadata.For(PluginId));
        }

        var started = Stopwatch.GetTimestamp();
        BeginBudget(callerDeadline);
        Calls++;
        try
        {
            var commandBytes = Encoding.UTF8.GetBytes(command);
            var commandPointer = _guest.CopyIn(commandBytes);
            var argsPointer = _guest.CopyIn(args);
            var code = _execute!(commandPointer, commandBytes.Length, argsPointer, args.Length);
            CheckMemory();
            _guest.FreeHostBuffers();
            var fuel = FuelUsed();
            if (code != 0 && NetworkTimedOut)
            {
                // The plugin gave up after one of its requests timed out: the caller learns that, not just a code.
                throw new SandboxException(ErrorReason.NetworkTimeout,
                    $"plugin {PluginId} failed with code {code} after a network request timed out" + (_errorMessage is null ? "" : $": {_errorMessage}"),
                    ErrorMetadata.For(PluginId, ("plugin_code", code.ToString(CultureInfo.InvariantCulture))));
            }

            if (code != 0)
            {
                throw new SandboxException(ErrorReason.PluginError,
                    $"plugin {PluginId} returned error code {code}" + (_errorMessage is null ? "" : $": {_errorMessage}"),
                    ErrorMetadata.For(PluginId, ("plugin_code", code.ToString(CultureInfo.InvariantCulture)), ("fuel_consumed", fuel.ToString(CultureInfo.InvariantCulture))));
            }

            return new ExecutionResult(_output ?? [], fuel, (long)Stopwatch.GetElapsedTime(started).TotalMicroseconds, MemoryBytes);
        }
        catch (Exception e)
        {
            throw Classify(e);
        }
        finally
        {
            FuelConsumedTotal += FuelUsed();
            EndCall();
        }
    }

    /// <summary>Runs <c>plugin_cleanup</c> once, if exported, under a normal call budget.</summary>
    public (bool Called, int Code) Cleanup(TimeSpan? deadline = null)
    {
        if (_cleanup is null || _cleanedUp || _terminatedBy is not null)
        {
            _log.Finish(); // nothing of the plugin runs after an unload's cleanup
            return (false, 0);
        }

        _cleanedUp = true;
        BeginBudget(deadline);
        try
        {
            var code = _cleanup();
            CheckMemory();
            return (true, code);
        }
        catch (Exception e)
        {
            throw Classify(e);
        }
        finally
        {
            EndCall();
            _log.Finish();
        }
    }

    public void Dispose()
    {
        _store.Dispose();
        _linker.Dispose();
        _module.Dispose();
    }

    // ---- budget, deadline and the checks that end a call (their errors are PluginFaults') --------------

    private void BeginBudget(TimeSpan? callerDeadline)
    {
        _deadlineMs = Limits.TimeoutMs;
        if (callerDeadline is { } requested && requested.TotalMilliseconds < _deadlineMs)
            _deadlineMs = Math.Max(0, (long)requested.TotalMilliseconds);
        _deadline = Stopwatch.GetTimestamp() + (long)(_deadlineMs / 1000.0 * Stopwatch.Frequency);
        _store.Fuel = (ulong)Limits.FuelPerCall;
        _store.SetEpochDeadline(1);
        CappedMemory.Running(this);
        _engine.BeginRunning();
        _output = null;
        _errorMessage = null;
        NetworkTimedOut = false;
    }

    private void EndCall()
    {
        CappedMemory.Running(null);
        _engine.EndRunning();
        _guest.ForgetHostBuffers();
        _log.EndCall();
        PeakMemoryBytes = Math.Max(PeakMemoryBytes, MemoryBytes);
    }

    private long FuelUsed() => Limits.FuelPerCall - (long)Math.Min(_store.Fuel, (ulong)Limits.FuelPerCall);

    private ulong OnEpochTick()
    {
        CheckMemory();
        if (Stopwatch.GetTimestamp() >= _deadline) throw TimeoutFault();
        return 1;
    }

    /// <summary>Throws <c>MEMORY_LIMIT_EXCEEDED</c> once the linear memory has grown past the limit.</summary>
    internal void CheckMemory()
    {
        if (MemoryFault() is { } fault) throw fault;
    }

    /// <summary>
    /// CappedMemory refused a growth (or a memory) of <paramref name="requestedBytes"/>: past the plugin's limit, or
    /// (<paramref name="byProcessCap"/>) past what the worker's own cap, RLIMIT_DATA, still allowed. The call ends at
    /// the next check, which the epoch's advance brings at once.
    /// </summary>
    internal void GrowthRefused(long requestedBytes, bool byProcessCap)
    {
        if (_refusedGrowth == 0) _refusedByProcessCap = byProcessCap;
        _refusedGrowth = Math.Max(_refusedGrowth, requestedBytes);
        _engine.Engine.IncrementEpoch();
    }

    /// <summary>The <c>MEMORY_LIMIT_EXCEEDED</c> fault once a growth was refused (or the memory is past the limit), else null.</summary>
    private SandboxException? MemoryFault()
    {
        if (_refusedGrowth > 0) return _faults.GrowthRefused(_refusedGrowth, _refusedByProcessCap);
        var length = _guest.Length;
        return length > Limits.MemoryBytes ? _faults.MemoryGrown(length) : null;
    }

    internal void CheckDeadline()
    {
        if (Stopwatch.GetTimestamp() >= _deadline) throw TimeoutFault();
    }

    internal TimeSpan Remaining => Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), _deadline);

    private SandboxException TimeoutFault() => _faults.Timeout(_deadlineMs);

    private void ThrowIfTerminated()
    {
        if (_terminatedBy is { } cause)
        {
            throw new SandboxException(ErrorReason.PluginCrashed,
                $"plugin {PluginId} was terminated by an earlier {cause.Reason.WireName()}: {cause.Message}", ErrorMetadata.For(PluginId));
        }
    }

    /// <summary>Maps whatever ended a call to its SPEC reason, and records it when it terminates the plugin.</summary>
    private SandboxException Classify(Exception exception)
    {
        var fault = PluginFaults.FindSandboxException(exception) ?? MemoryFault() ?? _faults.Translate(exception, _deadlineMs);
        if (fault.Reason.TerminatesPlugin()) _terminatedBy ??= fault;
        return fault;
    }

    // ---- guest memory (GuestMemory's; every host call is a checkpoint for the memory limit and the deadline) ----

    /// <summary>Bounds-checks a (pointer, length) pair from the plugin; outside its memory is a trap.</summary>
    internal Span<byte> Guest(Caller caller, int pointer, int length, string function)
    {
        HostCallCheckpoint();
        return _guest.Span(caller, pointer, length, function);
    }

    /// <summary>Where a host call starts: the memory limit and the deadline (a loop of host calls spends its time here, not in WebAssembly).</summary>
    internal void HostCallCheckpoint()
    {
        CheckMemory();
        CheckDeadline();
    }

    /// <summary>A buffer of the plugin's own allocator, freed when the call ends; 0 when it could not allocate.</summary>
    internal int AllocateInGuest(int size) => _guest.Allocate(size);

    /// <summary>Fills a buffer <see cref="AllocateInGuest"/> returned (and so already bounds-checked).</summary>
    internal void WriteToGuest(int pointer, ReadOnlySpan<byte> bytes) => _guest.Write(pointer, bytes);

    internal void SetOutput(byte[] output) => _output = output;

    internal void SetErrorMessage(ReadOnlySpan<byte> message) =>
        _errorMessage = Encoding.UTF8.GetString(message[..Math.Min(message.Length, MaxErrorMessageBytes)]);
}
