namespace Connectias.Sandbox.WorkerProtocol;

/// <summary><see cref="ResourceLimits"/> to and from the worker protocol's <see cref="Worker.V1.WorkerLimits"/>, here only.</summary>
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
}
