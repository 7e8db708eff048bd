namespace Connectias.Sandbox.Daemon.Calls;

/// <summary>
/// The bytes of arguments that calls hold while they wait or run, across all plugins (each queue also keeps its own
/// count): beyond <c>QueueBytesTotal</c> a call is QUEUE_FULL, so callers cannot make the daemon hold gigabytes.
/// </summary>
internal sealed class QueuedBytes(long limit)
{
    private long _held;

    public long Limit { get; } = limit;

    public bool TryReserve(long bytes)
    {
        if (Interlocked.Add(ref _held, bytes) <= Limit) return true;
        Interlocked.Add(ref _held, -bytes);
        return false;
    }

    public void Release(long bytes) => Interlocked.Add(ref _held, -bytes);
}
