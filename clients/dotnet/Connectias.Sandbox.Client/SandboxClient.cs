using System.Runtime.CompilerServices;
using Connectias.Sandbox.Contracts;
using Connectias.Sandbox.V1;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Net.Client;

namespace Connectias.Sandbox.Client;

/// <summary>The daemon could not be reached at all (no daemon on the socket, connection lost).</summary>
public sealed class SandboxUnavailableException(string message, Exception inner) : Exception(message, inner);

/// <summary>
/// A connection to connectias-sandboxd. Every refusal arrives as a <see cref="SandboxException"/>
/// carrying the SPEC reason and the ErrorInfo metadata (plugin_id, limit, used, plugin_code, ...).
/// </summary>
public sealed class SandboxClient : IDisposable
{
    private readonly GrpcChannel _channel;

    private SandboxClient(GrpcChannel channel, string endpoint)
    {
        _channel = channel;
        Endpoint = endpoint;
        Raw = new PluginHost.PluginHostClient(channel);
    }

    public string Endpoint { get; }

    /// <summary>The generated client, for anything the wrapper does not cover.</summary>
    public PluginHost.PluginHostClient Raw { get; }

    /// <summary>Connects to the daemon's Unix socket; by default the one a default daemon listens on.</summary>
    public static SandboxClient Connect(string? socketPath = null)
    {
        var path = socketPath ?? SandboxPaths.SocketPath(SandboxPaths.DefaultStateDirectory());
        return new SandboxClient(UnixSocketChannel.Create(path), path);
    }

    /// <summary>
    /// Connects to a daemon's plaintext TCP listener (<c>--tcp</c> with <c>--tcp-insecure</c>), e.g. <c>http://127.0.0.1:7700</c>;
    /// an https:// address is checked against the system's roots and offers no client certificate (a TLS proxy, say).
    /// </summary>
    public static SandboxClient ConnectAddress(Uri address)
    {
        if (address.Scheme is not ("http" or "https") || address.AbsolutePath != "/")
            throw new ArgumentException($"'{address}' is not a daemon address such as http://127.0.0.1:7700", nameof(address));
        return new SandboxClient(GrpcChannel.ForAddress(address, new GrpcChannelOptions
        {
            MaxReceiveMessageSize = UnixSocketChannel.MaxMessageBytes,
            MaxSendMessageSize = UnixSocketChannel.MaxMessageBytes,
        }), address.ToString());
    }

    /// <summary>
    /// Connects to a daemon's TLS TCP listener, e.g. <c>https://127.0.0.1:7700</c>, with a client certificate (mutual
    /// TLS, SPEC §5); the daemon's certificate must chain to <paramref name="tls"/>'s CAs and name the address's host.
    /// </summary>
    public static SandboxClient ConnectAddress(Uri address, SandboxTls tls)
    {
        if (address.Scheme != "https" || address.AbsolutePath != "/")
            throw new ArgumentException($"'{address}' is not a TLS daemon address such as https://127.0.0.1:7700", nameof(address));
        var handler = new SocketsHttpHandler { SslOptions = tls.ToSslOptions(), EnableMultipleHttp2Connections = true };
        return new SandboxClient(GrpcChannel.ForAddress(address, new GrpcChannelOptions
        {
            HttpHandler = handler,
            DisposeHttpClient = true,
            MaxReceiveMessageSize = UnixSocketChannel.MaxMessageBytes,
            MaxSendMessageSize = UnixSocketChannel.MaxMessageBytes,
        }), address.ToString());
    }

    /// <summary>
    /// Loads a package the client reads and sends as bytes (the daemon need not see the file). With
    /// <paramref name="replace"/> a loaded plugin of the same id is upgraded without a gap (SPEC §4).
    /// </summary>
    public Task<PluginInfo> LoadAsync(byte[] package, CancellationToken cancellation = default, bool replace = false) =>
        Call(async () => (await Raw.LoadPluginAsync(new LoadPluginRequest { Package = ByteString.CopyFrom(package), Replace = replace }, cancellationToken: cancellation)).Plugin);

    /// <summary>Loads a package by a path on the daemon's machine, readable by the daemon.</summary>
    public Task<PluginInfo> LoadFromPathAsync(string path, CancellationToken cancellation = default, bool replace = false) =>
        Call(async () => (await Raw.LoadPluginAsync(new LoadPluginRequest { Path = path, Replace = replace }, cancellationToken: cancellation)).Plugin);

    public Task<ExecuteResponse> ExecuteAsync(string pluginId, string command, ReadOnlyMemory<byte> args = default, TimeSpan? timeout = null, CancellationToken cancellation = default) =>
        Call(async () => await Raw.ExecuteAsync(new ExecuteRequest { PluginId = pluginId, Command = command, Args = ByteString.CopyFrom(args.Span) },
            deadline: timeout is { } t ? DateTime.UtcNow + t : null, cancellationToken: cancellation));

    /// <summary>Unloads a plugin; with <paramref name="cascade"/> the plugins that depend on it first (else DEPENDENCY_NOT_MET).</summary>
    public Task<CleanupReport> UnloadAsync(string pluginId, CancellationToken cancellation = default, bool cascade = false) =>
        Call(async () => (await Raw.UnloadPluginAsync(new UnloadPluginRequest { PluginId = pluginId, Cascade = cascade }, cancellationToken: cancellation)).Report);

    public Task<IReadOnlyList<PluginInfo>> ListAsync(CancellationToken cancellation = default) =>
        Call(async () => (IReadOnlyList<PluginInfo>)(await Raw.ListPluginsAsync(new ListPluginsRequest(), cancellationToken: cancellation)).Plugins.ToList());

    public Task<PluginInfo> GetAsync(string pluginId, CancellationToken cancellation = default) =>
        Call(async () => await Raw.GetPluginAsync(new GetPluginRequest { PluginId = pluginId }, cancellationToken: cancellation));

    /// <summary>Lifecycle changes, violations and audit records as they happen, until cancelled.</summary>
    public async IAsyncEnumerable<Event> WatchEventsAsync(string? pluginId = null, [EnumeratorCancellation] CancellationToken cancellation = default)
    {
        using var call = Raw.WatchEvents(new WatchEventsRequest { PluginId = pluginId ?? "" }, cancellationToken: cancellation);
        while (true)
        {
            Event item;
            try
            {
                if (!await call.ResponseStream.MoveNext(cancellation)) yield break;
                item = call.ResponseStream.Current;
            }
            catch (RpcException e) when (e.StatusCode == StatusCode.Cancelled && cancellation.IsCancellationRequested)
            {
                yield break;
            }
            catch (RpcException e)
            {
                throw Translate(e);
            }

            yield return item;
        }
    }

    public void Dispose() => _channel.Dispose();

    private static Exception? Innermost(Exception? exception)
    {
        while (exception?.InnerException is not null) exception = exception.InnerException;
        return exception;
    }

    private static bool IsTlsFailure(Exception? exception)
    {
        for (; exception is not null; exception = exception.InnerException)
            if (exception is System.Security.Authentication.AuthenticationException) return true;
        return false;
    }

    private async Task<T> Call<T>(Func<Task<T>> call)
    {
        try
        {
            return await call();
        }
        catch (RpcException e)
        {
            throw Translate(e);
        }
    }

    /// <summary>
    /// A sandbox refusal becomes a SandboxException, and so does the caller's own deadline passing
    /// (<c>TIMEOUT</c>, SPEC §8); a status without sandbox ErrorInfo otherwise means the daemon was not reached.
    /// </summary>
    private Exception Translate(RpcException e) =>
        (Exception?)ErrorStatus.FromRpcException(e) ?? e.StatusCode switch
        {
            StatusCode.DeadlineExceeded => new SandboxException(ErrorReason.Timeout, $"the call's deadline passed before connectias-sandboxd answered ({e.Status.Detail})", null, e),
            // A refused TLS handshake is UNAVAILABLE or, when this side refused the daemon's certificate, INTERNAL.
            StatusCode.Unavailable or StatusCode.Internal when Innermost(e.Status.DebugException) is { } cause && IsTlsFailure(e.Status.DebugException) =>
                new SandboxUnavailableException($"the TLS handshake with the daemon at {Endpoint} failed ({cause.Message})", e),
            // A daemon that refuses this client's certificate cannot say so: it closes the connection after the handshake.
            StatusCode.Unavailable when Endpoint.StartsWith("https:", StringComparison.Ordinal) => new SandboxUnavailableException(
                $"no daemon answered at {Endpoint} ({Innermost(e.Status.DebugException)?.Message ?? e.Status.Detail}): it is not listening, or it refused this client's certificate (its log says which)", e),
            StatusCode.Unavailable => new SandboxUnavailableException($"no daemon is listening on {Endpoint} ({Innermost(e.Status.DebugException)?.Message ?? e.Status.Detail})", e),
            _ => e,
        };
}
