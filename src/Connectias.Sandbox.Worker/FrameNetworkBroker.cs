using System.Collections.Concurrent;
using Connectias.Sandbox.Runtime;
using Connectias.Sandbox.Worker.V1;
using Google.Protobuf;

namespace Connectias.Sandbox.Worker;

/// <summary>
/// The worker's side of http_request: every request goes up the connection as a BrokerCall, and the plugin's
/// host call waits for the daemon's BrokerReply (or its deadline). The worker itself never opens a network
/// connection; inside bubblewrap it has no network to open one on.
/// </summary>
internal sealed class FrameNetworkBroker(Action<WorkerReply> send) : INetworkBroker
{
    private readonly ConcurrentDictionary<ulong, TaskCompletionSource<BrokerReply>> _pending = new();
    private long _nextId;
    private volatile bool _closed;

    public (int Code, byte[] Response) Send(ReadOnlySpan<byte> requestJson, TimeSpan remaining)
    {
        if (_closed) return (AbiCodes.IoFailure, []);
        var id = (ulong)Interlocked.Increment(ref _nextId);
        var waiting = new TaskCompletionSource<BrokerReply>(TaskCreationOptions.RunContinuationsAsynchronously);
        _pending[id] = waiting;
        try
        {
            send(new WorkerReply
            {
                Id = id,
                BrokerCall = new BrokerCall { RequestJson = ByteString.CopyFrom(requestJson), DeadlineMs = (ulong)Math.Max(1, remaining.TotalMilliseconds) },
            });
            // The host call runs on the thread executing WebAssembly, so it waits synchronously.
            return waiting.Task.Wait(remaining + TimeSpan.FromSeconds(1))
                ? (waiting.Task.Result.Code, waiting.Task.Result.ResponseJson.ToByteArray())
                : (AbiCodes.Timeout, []);
        }
        catch (IOException)
        {
            return (AbiCodes.IoFailure, []);
        }
        finally
        {
            _pending.TryRemove(id, out _);
        }
    }

    /// <summary>The daemon's answer to the BrokerCall <paramref name="id"/>; one nobody waits for any more is dropped.</summary>
    public void Answer(ulong id, BrokerReply reply)
    {
        if (_pending.TryRemove(id, out var waiting)) waiting.TrySetResult(reply);
    }

    /// <summary>The connection is gone: requests waiting and to come fail at once.</summary>
    public void Close()
    {
        _closed = true;
        foreach (var (_, waiting) in _pending) waiting.TrySetResult(new BrokerReply { Code = AbiCodes.IoFailure });
    }
}
