namespace Connectias.Sandbox.WorkerProtocol;

/// <summary>
/// <see cref="ResourceLimits"/> and <see cref="PluginBudgets"/> to and from the worker protocol's
/// <see cref="Worker.V1.WorkerLimits"/> and <see cref="Worker.V1.WorkerBudgets"/>, here only.
/// </summary>
public static class WorkerLimitsMapping
{
    /// <summary>The limits a worker enforces itself; the network ones stay with the daemon's broker.</summary>
    public static Worker.V1.WorkerLimits ToWorkerLimits(this ResourceLimits limits) => new()
    {
        MemoryBytes = (ulong)limits.MemoryBytes,
        FuelPerCall = (ulong)limits.FuelPerCall,
        TimeoutMs = (ulong)limits.TimeoutMs,
        StorageBytes = (ulong)limits.StorageBytes,
        OutputBytes = (ulong)limits.OutputBytes,
    };

    public static ResourceLimits ToResourceLimits(this Worker.V1.WorkerLimits limits) => ResourceLimits.Defaults with
    {
        MemoryBytes = (long)limits.MemoryBytes,
        FuelPerCall = (long)limits.FuelPerCall,
        TimeoutMs = (long)limits.TimeoutMs,
        StorageBytes = (long)limits.StorageBytes,
        OutputBytes = (long)limits.OutputBytes,
    };

    public static Worker.V1.WorkerBudgets ToWorkerBudgets(this PluginBudgets budgets) => new()
    {
        LogLinesPerCall = (uint)budgets.LogLinesPerCall,
        LogBytesPerCall = (ulong)budgets.LogBytesPerCall,
        LogLinesPerMinute = (uint)budgets.LogLinesPerMinute,
        LogBytesPerMinute = (ulong)budgets.LogBytesPerMinute,
        StorageMaxEntries = (uint)budgets.StorageMaxEntries,
    };

    /// <summary>The budgets a Load carries; a field left at 0 (or no budgets at all) keeps its default.</summary>
    public static PluginBudgets ToPluginBudgets(this Worker.V1.WorkerBudgets? budgets)
    {
        var defaults = PluginBudgets.Defaults;
        if (budgets is null) return defaults;
        return new PluginBudgets
        {
            LogLinesPerCall = OrDefault(budgets.LogLinesPerCall, defaults.LogLinesPerCall),
            LogBytesPerCall = OrDefault(budgets.LogBytesPerCall, defaults.LogBytesPerCall),
            LogLinesPerMinute = OrDefault(budgets.LogLinesPerMinute, defaults.LogLinesPerMinute),
            LogBytesPerMinute = OrDefault(budgets.LogBytesPerMinute, defaults.LogBytesPerMinute),
            StorageMaxEntries = OrDefault(budgets.StorageMaxEntries, defaults.StorageMaxEntries),
        };
    }

    private static int OrDefault(uint value, int fallback) => value == 0 ? fallback : (int)Math.Min(value, int.MaxValue);

    private static long OrDefault(ulong value, long fallback) => value == 0 ? fallback : (long)Math.Min(value, long.MaxValue);
}
