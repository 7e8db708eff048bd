using System.Net.Sockets;
using System.Threading.Channels;
using Connectias.Sandbox.Worker.V1;

namespace Connectias.Sandbox.WorkerProtocol;

/// <summary>
/// The supervisor's end of the one connection to a worker (worker.proto): requests go out in the order they
/// are sent, without waiting for earlier replies; replies are matched by id and checked against the
/// protocol (each answers a request of its kind, in order for the sequenced ones). A worker that breaks the
/// protocol is not trusted: the connection closes and every waiting request fails with a
/// <see cref="WorkerConnectionException"/> whose <see cref="WorkerConnectionException.ProtocolViolation"/> is set.
/// </summary>
public sealed class WorkerConnection : IDisposable
{
    private readonly Socket _socket;
    private readonly NetworkStream _stream;
    private readonly Channel<byte[]> _outgoing = Channel.CreateUnbounded<byte[]>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Lock _sync = new();
    private readonly Dictionary<ulong, (WorkerRequest.BodyOneofCase Kind, TaskCompletionSource<WorkerReply> Reply)> _pending = [];
    private readonly Queue<ulong> _sequenced = new();
    private readonly TaskCompletionSource<WorkerConnectionException> _closed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly CancellationTokenSource _lifetime = new();
    private ulong _nextId;

    private WorkerConnection(Socket socket)
    {
        _socket = socket;
        _stream = new NetworkStream(socket, ownsSocket: false);
        _ = WriteLoopAsync();
        _ = ReadLoopAsync();
    }

    /// <summary>
    /// Called for each BrokerCall the worker makes (its id and the call), on the reading thread; answer with
    /// <see cref="Post"/>. Without a handler a BrokerCall is a protocol violation.
    /// </summary>
    public Action<ulong, BrokerCall>? OnBrokerCall { get; set; }

    /// <summary>Completes when the connection ends, with why (a protocol violation, or the worker went away).</summary>
    public Task<WorkerConnectionException> Closed => _closed.Task;

    public static async Task<WorkerConnection> ConnectAsync(string socketPath, CancellationToken cancellation)
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), cancellation);
            return new WorkerConnection(socket);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Sends <paramref name="request"/> under a fresh id and returns the id and the reply to come. Load,
    /// Compile, Execute and Cleanup are answered in the order they are sent.
    /// </summary>
    public (ulong Id, Task<WorkerReply> Reply) Send(WorkerRequest request)
    {
        var reply = new TaskCompletionSource<WorkerReply>(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_sync)
        {
            if (_closed.Task.IsCompleted) return (0, Task.FromException<WorkerReply>(_closed.Task.Result));
            request.Id = ++_nextId;
            _pending[request.Id] = (request.BodyCase, reply);
            if (IsSequenced(request.BodyCase)) _sequenced.Enqueue(request.Id);
            // Inside the lock: the frames leave in the order their ids were given, which the worker's order relies on.
            _outgoing.Writer.TryWrite(WorkerFrames.Encode(request));
        }

        return (request.Id, reply.Task);
    }

    /// <summary>Sends a message that has no reply (Cancel, BrokerReply); lost silently once the connection is closed.</summary>
    public void Post(WorkerRequest message)
    {
        lock (_sync) _outgoing.Writer.TryWrite(WorkerFrames.Encode(message));
    }

    public async Task<LoadResponse> LoadAsync(LoadRequest load, TimeSpan timeout, CancellationToken cancellation = default) =>
        (await RequestAsync(new WorkerRequest { Load = load }, timeout, cancellation)).Load;

    public async Task<CompileResponse> CompileAsync(CompileRequest compile, TimeSpan timeout, CancellationToken cancellation = default) =>
        (await RequestAsync(new WorkerRequest { Compile = compile }, timeout, cancellation)).Compile;

    public async Task<ExecuteResponse> ExecuteAsync(ExecuteRequest execute, TimeSpan timeout, CancellationToken cancellation = default) =>
        (await RequestAsync(new WorkerRequest { Execute = execute }, timeout, cancellation)).Execute;

    public async Task<CleanupResponse> CleanupAsync(CleanupRequest cleanup, TimeSpan timeout, CancellationToken cancellation = default) =>
        (await RequestAsync(new WorkerRequest { Cleanup = cleanup }, timeout, cancellation)).Cleanup;

    public async Task<GetStatusResponse> GetStatusAsync(TimeSpan timeout, CancellationToken cancellation = default) =>
        (await RequestAsync(new WorkerRequest { Status = new GetStatusRequest() }, timeout, cancellation)).Status;

    /// <summary>One request and its reply; <see cref="TimeoutException"/> when none came within <paramref name="timeout"/>.</summary>
    private async Task<WorkerReply> RequestAsync(WorkerRequest request, TimeSpan timeout, CancellationToken cancellation)
    {
        var (_, reply) = Send(request);
        try
        {
            return await reply.WaitAsync(timeout, cancellation);
        }
        catch (TimeoutException)
        {
            throw new TimeoutException($"the worker did not answer {request.BodyCase} within {timeout.TotalMilliseconds:F0} ms");
        }
    }

    private static bool IsSequenced(WorkerRequest.BodyOneofCase kind) =>
        kind is WorkerRequest.BodyOneofCase.Load or WorkerRequest.BodyOneofCase.Compile or WorkerRequest.BodyOneofCase.Execute or WorkerRequest.BodyOneofCase.Cleanup;

    private static WorkerReply.BodyOneofCase ReplyKind(WorkerRequest.BodyOneofCase kind) => kind switch
    {
        WorkerRequest.BodyOneofCase.Load => WorkerReply.BodyOneofCase.Load,
        WorkerRequest.BodyOneofCase.Compile => WorkerReply.BodyOneofCase.Compile,
        WorkerRequest.BodyOneofCase.Execute => WorkerReply.BodyOneofCase.Execute,
        WorkerRequest.BodyOneofCase.Cleanup => WorkerReply.BodyOneofCase.Cleanup,
        WorkerRequest.BodyOneofCase.Status => WorkerReply.BodyOneofCase.Status,
        _ => WorkerReply.BodyOneofCase.None,
    };

    private async Task WriteLoopAsync()
    {
        try
        {
            while (await _outgoing.Reader.WaitToReadAsync(_lifetime.Token))
            {
                while (_outgoing.Reader.TryRead(out var frame)) await _stream.WriteAsync(frame, _lifetime.Token);
            }
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException or OperationCanceledException)
        {
            Close(new WorkerConnectionException($"the connection to the worker failed: {e.Message}", protocolViolation: false));
        }
    }

    private async Task ReadLoopAsync()
    {
        var header = new byte[WorkerFrames.HeaderBytes];
        // Reads go through a buffer so a small frame is one read; a large one goes around it.
        using var reads = new BufferedStream(_stream, 64 * 1024);
        try
        {
            while (await WorkerFrames.ReadAsync(reads, WorkerReply.Parser, header, _lifetime.Token) is { } reply) Dispatch(reply);
            Close(new WorkerConnectionException("the worker closed its connection", protocolViolation: false));
        }
        catch (WorkerProtocolException e)
        {
            Close(new WorkerConnectionException(e.Message, protocolViolation: true));
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException or OperationCanceledException)
        {
            Close(new WorkerConnectionException($"the connection to the worker failed: {e.Message}", protocolViolation: false));
        }
    }

    private void Dispatch(WorkerReply reply)
    {
        if (reply.BodyCase == WorkerReply.BodyOneofCase.BrokerCall)
        {
            var handler = OnBrokerCall ?? throw new WorkerProtocolException("a BrokerCall from a worker that was given no network broker");
            handler(reply.Id, reply.BrokerCall);
            return;
        }

        TaskCompletionSource<WorkerReply> waiting;
        lock (_sync)
        {
            if (!_pending.Remove(reply.Id, out var pending)) throw new WorkerProtocolException($"a reply (id {reply.Id}, {reply.BodyCase}) to no request");
            if (ReplyKind(pending.Kind) != reply.BodyCase) throw new WorkerProtocolException($"a {reply.BodyCase} reply to a {pending.Kind} request");
            if (IsSequenced(pending.Kind) && (!_sequenced.TryDequeue(out var expected) || expected != reply.Id))
                throw new WorkerProtocolException($"the reply to request {reply.Id} came out of order");
            waiting = pending.Reply;
        }

        waiting.TrySetResult(reply);
    }

    private void Close(WorkerConnectionException why)
    {
        List<TaskCompletionSource<WorkerReply>> waiting;
        lock (_sync)
        {
            if (!_closed.TrySetResult(why)) return;
            _outgoing.Writer.TryComplete();
            waiting = _pending.Values.Select(p => p.Reply).ToList();
            _pending.Clear();
            _sequenced.Clear();
        }

        foreach (var reply in waiting) reply.TrySetException(why);
        _socket.Dispose();
        try
        {
            _lifetime.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // Dispose ran meanwhile; the socket is closed either way
        }
    }

    public void Dispose()
    {
        Close(new WorkerConnectionException("the connection to the worker was closed by the supervisor", protocolViolation: false));
        _socket.Dispose(); // even when the reading loop's Close is still on its way
        _stream.Dispose();
        _lifetime.Dispose();
    }
}

/// <summary>A request that will get no reply: the connection ended, or the worker broke the protocol (then the message says how).</summary>
public sealed class WorkerConnectionException(string message, bool protocolViolation) : Exception(message)
{
    public bool ProtocolViolation { get; } = protocolViolation;
}
