namespace Connectias.Sandbox.Contracts;

/// <summary><see cref="ResourceLimits"/> to the public API's <see cref="V1.EffectiveLimits"/>, here only.</summary>
public static class LimitsMapping
{
    public static V1.EffectiveLimits ToProto(this ResourceLimits limits) => new()
    {
        MemoryBytes = (ulong)limits.MemoryBytes,
        FuelPerCall = (ulong)limits.FuelPerCall,
        TimeoutMs = (ulong)limits.TimeoutMs,
        StorageBytes = (ulong)limits.StorageBytes,
        OutputBytes = (ulong)limits.OutputBytes,
        RequestsPerMinute = (uint)Math.Min(limits.RequestsPerMinute, uint.MaxValue),
        MaxBodyBytes = (ulong)limits.MaxBodyBytes,
        NetworkTimeoutMs = (ulong)limits.NetworkTimeoutMs,
    };
}
