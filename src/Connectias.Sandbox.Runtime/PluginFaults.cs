using System.Globalization;
using Wasmtime;

namespace Connectias.Sandbox.Runtime;

/// <summary>
/// What ended a plugin's call, in SPEC reasons with their messages and metadata: Wasmtime's traps and errors
/// translated, and the faults the instance's own checks raise (deadline, memory). PluginInstance decides when; this
/// says what.
/// </summary>
internal sealed class PluginFaults(string pluginId, ResourceLimits limits)
{
    public SandboxException Timeout(long deadlineMs) => new(ErrorReason.Timeout,
        $"plugin {pluginId} ran past its deadline of {deadlineMs} ms",
        ErrorMetadata.For(pluginId, ("limit", deadlineMs.ToString(CultureInfo.InvariantCulture))));

    /// <summary>
    /// A growth CappedMemory refused: past the plugin's limit, or (<paramref name="byProcessCap"/>) past what the
    /// worker's own cap, RLIMIT_DATA, still allowed.
    /// </summary>
    public SandboxException GrowthRefused(long requestedBytes, bool byProcessCap)
    {
        var why = byProcessCap
            ? $"the worker's memory cap (RLIMIT_DATA: memory_bytes plus the daemon's allowance) had no room left to grow its memory to {requestedBytes} bytes"
            : $"tried to grow its memory to {requestedBytes} bytes; the limit is {limits.MemoryBytes} bytes";
        return MemoryLimit($"plugin {pluginId}: {why}", requestedBytes);
    }

    /// <summary>A memory found past the limit (a growth that was not refused: only a memory the runtime did not make).</summary>
    public SandboxException MemoryGrown(long lengthBytes) =>
        MemoryLimit($"plugin {pluginId} grew its memory to {lengthBytes} bytes; the limit is {limits.MemoryBytes} bytes", lengthBytes);

    private SandboxException MemoryLimit(string message, long usedBytes) => new(ErrorReason.MemoryLimitExceeded, message,
        ErrorMetadata.For(pluginId, ("limit", limits.MemoryBytes.ToString(CultureInfo.InvariantCulture)), ("used", usedBytes.ToString(CultureInfo.InvariantCulture))));

    public static SandboxException? FindSandboxException(Exception? exception)
    {
        for (; exception is not null; exception = exception.InnerException)
            if (exception is SandboxException sandbox) return sandbox;
        return null;
    }

    /// <summary>The SPEC reason of an exception the runtime did not raise itself: a trap, a Wasmtime error, the host's.</summary>
    public SandboxException Translate(Exception exception, long deadlineMs) => exception switch
    {
        TrapException { Type: TrapCode.OutOfFuel } => new SandboxException(ErrorReason.FuelExhausted,
            $"plugin {pluginId} used up its fuel budget of {limits.FuelPerCall}",
            ErrorMetadata.For(pluginId, ("limit", limits.FuelPerCall.ToString(CultureInfo.InvariantCulture)), ("used", limits.FuelPerCall.ToString(CultureInfo.InvariantCulture)))),
        TrapException { Type: TrapCode.Interrupt } => Timeout(deadlineMs),
        OutOfMemoryException => new SandboxException(ErrorReason.MemoryLimitExceeded,
            $"plugin {pluginId}: the worker ran out of memory under its cap (RLIMIT_DATA: memory_bytes plus the daemon's allowance)", ErrorMetadata.For(pluginId)),
        TrapException trap => new SandboxException(ErrorReason.PluginTrapped,
            $"plugin {pluginId} trapped: {TrapName(trap.Type)}", ErrorMetadata.For(pluginId, ("trap", TrapName(trap.Type)))),
        WasmtimeException { ExitCode: { } code } => new SandboxException(ErrorReason.PluginCrashed,
            $"plugin {pluginId} called proc_exit({code})", ErrorMetadata.For(pluginId, ("exit_code", code.ToString(CultureInfo.InvariantCulture)))),
        WasmtimeException wasm => new SandboxException(ErrorReason.PluginTrapped,
            $"plugin {pluginId} failed: {Cause(wasm.InnerException?.Message ?? wasm.Message)}", ErrorMetadata.For(pluginId, ("trap", "host"))),
        _ => new SandboxException(ErrorReason.PluginTrapped, $"plugin {pluginId} failed in the host: {exception.Message}", ErrorMetadata.For(pluginId), exception),
    };

    private static string TrapName(TrapCode code) => code switch
    {
        TrapCode.StackOverflow => "stack overflow",
        TrapCode.MemoryOutOfBounds => "out-of-bounds memory access",
        TrapCode.HeapMisaligned => "misaligned memory access",
        TrapCode.TableOutOfBounds => "out-of-bounds table access",
        TrapCode.IndirectCallToNull => "indirect call to null",
        TrapCode.BadSignature => "indirect call signature mismatch",
        TrapCode.IntegerOverflow => "integer overflow",
        TrapCode.IntegerDivisionByZero => "integer division by zero",
        TrapCode.BadConversionToInteger => "invalid conversion to integer",
        TrapCode.Unreachable => "unreachable",
        _ => code.ToString(),
    };

    internal static string FirstLine(string text) => text.Split('\n', 2)[0].Trim();

    /// <summary>
    /// What went wrong, from a Wasmtime error: its "Caused by:" part when there is one (the first line is then only
    /// "error while executing at wasm backtrace:"), on one line; otherwise the first line.
    /// </summary>
    internal static string Cause(string text)
    {
        const string CausedBy = "Caused by:";
        var at = text.IndexOf(CausedBy, StringComparison.Ordinal);
        if (at < 0) return FirstLine(text);
        var lines = text[(at + CausedBy.Length)..].Split('\n', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        // A chain of causes comes numbered ("0: outer", "1: inner"); the numbers go, the causes stay in order.
        return string.Join("; ", lines.Select(line => System.Text.RegularExpressions.Regex.Replace(line, @"^\d+:\s*", "")));
    }
}
