using System.Diagnostics;

namespace Connectias.Sandbox.Daemon.Calls;

/// <summary>One call waiting for, or running in, a plugin.</summary>
internal sealed class CallJob(string command, byte[] args, DateTime? deadline, CancellationToken cancellation, Activity? span = null)
{
    public string Command { get; } = command;
    public byte[] Args { get; } = args;

    /// <summary>The caller's deadline (UTC), if it set one.</summary>
    public DateTime? Deadline { get; } = deadline;
    public CancellationToken Cancellation { get; } = cancellation;
    public TaskCompletionSource<V1.ExecuteResponse> Result { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>The call's Execute span when it is traced: the parent of its queue and worker spans.</summary>
    public Activity? Span { get; } = span;

    /// <summary>The call's worker span once it is forwarded, when traced: the parent of the plugin's network requests.</summary>
    public Activity? WorkerSpan { get; set; }

    /// <summary>1 once the queue stopped counting the call against its limit.</summary>
    public int Settled;

    /// <summary>When the call joined the queue; its queue span starts here.</summary>
    public DateTimeOffset QueuedAt { get; } = DateTimeOffset.UtcNow;
}
