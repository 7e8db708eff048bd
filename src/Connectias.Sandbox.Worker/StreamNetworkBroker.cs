using System.Collections.Concurrent;
using Connectias.Sandbox.Runtime;
using Connectias.Sandbox.Worker.V1;
using Google.Protobuf;
using Grpc.Core;

namespace Connectias.Sandbox.Worker;

/// <summary>
/// The worker's side of http_request: every request goes up the Broker stream the supervisor opened,
/// and the plugin's host call waits for the answer (or its deadline). The worker itself never opens a
/// network connection; inside bubblewrap it has no network to open one on.
/// </summary>
internal sealed class StreamNetworkBroker : INetworkBroker
{
    private readonly ConcurrentDictionary<ulong, TaskCompletionSource<BrokerReply>> _pending = new();
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private IServerStreamWriter<BrokerCall>? _calls;
    private long _nextId;

    public bool IsAttached => Volatile.Read(ref _calls) is not null;

    /// <summary>The supervisor opens the stream just before Load; the two calls may arrive in either order.</summary>
    public async Task WaitUntilAttachedAsync(TimeSpan timeout)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (!IsAttached && clock.Elapsed < timeout) await Task.Delay(5);
    }

    /// <summary>Serves the Broker stream until the supervisor closes it.</summary>
    public async Task AttachAsync(IAsyncStreamReader<BrokerReply> replies, IServerStreamWriter<BrokerCall> calls, CancellationToken cancellation)
    {
        Volatile.Write(ref _calls, calls);
        try
        {
            while (await replies.MoveNext(cancellation))
            {
                if (_pending.TryRemove(replies.Current.Id, out var waiting)) waiting.TrySetResult(replies.Current);
            }
        }
        catch (OperationCanceledException)
        {
            // the supervisor went away
        }
        finally
        {
            Volatile.Write(ref _calls, null);
            foreach (var (_, waiting) in _pending) waiting.TrySetResult(new BrokerReply { Code = AbiCodes.IoFailure });
        }
    }

    public (int Code, byte[] Response) Send(ReadOnlySpan<byte> requestJson, TimeSpan remaining)
    {
        var calls = Volatile.Read(ref _calls);
        if (calls is null) return (AbiCodes.IoFailure, []);
        var id = (ulong)Interlocked.Increment(ref _nextId);
        var waiting = new TaskCompletionSource<BrokerReply>(TaskCreationOptions.RunContinuationsAsynchronously);
        _pending[id] = waiting;
        var call = new BrokerCall { Id = id, RequestJson = ByteString.CopyFrom(requestJson), DeadlineMs = (ulong)Math.Max(1, remaining.TotalMilliseconds) };
        try
        {
            // The host call runs on the thread executing WebAssembly, so it waits synchronously.
            _writeLock.Wait();
            try
            {
                calls.WriteAsync(call).GetAwaiter().GetResult();
            }
            finally
            {
                _writeLock.Release();
            }

            return waiting.Task.Wait(remaining + TimeSpan.FromSeconds(1))
                ? (waiting.Task.Result.Code, waiting.Task.Result.ResponseJson.ToByteArray())
                : (AbiCodes.Timeout, []);
        }
        catch (Exception e) when (e is InvalidOperationException or IOException or RpcException)
        {
            return (AbiCodes.IoFailure, []);
        }
        finally
        {
            _pending.TryRemove(id, out _);
        }
    }
}
