using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Connectias.Sandbox.Daemon.Policy;
using Connectias.Sandbox.Daemon.Telemetry;
using Connectias.Sandbox.Packaging;

namespace Connectias.Sandbox.Daemon.Network;

/// <summary>Why the broker refused a request, for the audit log and the plugin's violation events.</summary>
internal sealed record NetworkRefusal(int Code, string Rule, string Host, string Message);

/// <summary>
/// Performs one plugin's http_request calls (SPEC §3): http/https only; the host must be allowed by both
/// the manifest and the policy; every resolved address, of every redirect hop, must be public unless
/// the policy allows that host's private address; at most 5 redirects, each re-checked; a request rate,
/// body sizes and a timeout. Workers never open sockets; this is the only way out.
/// </summary>
internal sealed class NetworkBroker : IDisposable
{
    private const int MaxRedirects = 5;
    private static readonly HashSet<string> HopByHopHeaders = new(StringComparer.OrdinalIgnoreCase)
    {
        "Host", "Connection", "Content-Length", "Transfer-Encoding", "Upgrade", "Keep-Alive", "Proxy-Connection", "TE", "Trailer",
    };

    private readonly string _pluginId;
    private readonly IReadOnlyList<HostPattern> _manifestHosts;
    private readonly PolicyGrant _grant;
    private readonly int _requestsPerMinute;
    private readonly long _maxBodyBytes;
    private readonly TimeSpan _timeout;
    private readonly Action<NetworkRefusal> _onRefusal;
    private readonly DaemonMetrics _metrics;
    private readonly HttpClient _http;
    private readonly Queue<DateTime> _recent = new();
    private Activity? _callInFlight;

    public NetworkBroker(string pluginId, IReadOnlyList<HostPattern> manifestHosts, PolicyGrant grant, ResourceLimits limits, DaemonMetrics metrics,
        Action<NetworkRefusal> onRefusal)
    {
        _pluginId = pluginId;
        _manifestHosts = manifestHosts;
        _grant = grant;
        _requestsPerMinute = (int)Math.Min(limits.RequestsPerMinute, int.MaxValue);
        _maxBodyBytes = limits.MaxBodyBytes;
        _timeout = TimeSpan.FromMilliseconds(limits.NetworkTimeoutMs);
        _onRefusal = onRefusal;
        _metrics = metrics;
        _http = new HttpClient(new SocketsHttpHandler
        {
            AllowAutoRedirect = false,        // every hop is checked here
            UseProxy = false,
            UseCookies = false,
            AutomaticDecompression = DecompressionMethods.None, // no decompression bombs: bytes are counted as sent
            ConnectCallback = ConnectCheckedAsync,
            PooledConnectionIdleTimeout = TimeSpan.FromSeconds(30),
            ConnectTimeout = _timeout,
            ActivityHeadersPropagator = BrokerPropagators.For(grant.PropagateTraceContext), // traceparent only where the policy allows it
        })
        {
            Timeout = Timeout.InfiniteTimeSpan,
        };
    }

    public long Requests;
    public long BytesSent;
    public long BytesReceived;
    public long Refusals;
    public int InFlight;

    /// <summary>The worker span of the plugin's call in flight (calls run one at a time): the parent of its requests' spans.</summary>
    public Activity? CallInFlight
    {
        get => Volatile.Read(ref _callInFlight);
        set => Volatile.Write(ref _callInFlight, value);
    }

    /// <summary>
    /// Performs one request. <paramref name="workerLifetime"/> belongs to the worker that asked: once it is
    /// cancelled (the plugin is terminated or unloaded) requests in flight end and later ones fail at once.
    /// </summary>
    public async Task<(int Code, byte[] Response)> HandleAsync(byte[] requestJson, TimeSpan remaining, CancellationToken workerLifetime)
    {
        Interlocked.Increment(ref InFlight);
        using var span = DaemonTracing.StartBrokeredRequest(_pluginId, CallInFlight);
        try
        {
            var (code, response) = workerLifetime.IsCancellationRequested ? (AbiCodes.IoFailure, []) : await PerformAsync(requestJson, remaining, workerLifetime, span);
            DaemonTracing.EndRequest(span, code);
            return (code, response);
        }
        finally
        {
            Interlocked.Decrement(ref InFlight);
        }
    }

    private async Task<(int Code, byte[] Response)> PerformAsync(byte[] requestJson, TimeSpan remaining, CancellationToken lifetime, Activity? span)
    {
        if (!BrokerJson.TryParseRequest(requestJson, out var method, out var uri, out var headers, out var body)) return (AbiCodes.BadRequest, []);
        DaemonTracing.DescribeRequest(span, method, uri!);
        var host = uri?.Host ?? "";
        lock (_recent)
        {
            var now = DateTime.UtcNow;
            while (_recent.Count > 0 && now - _recent.Peek() > TimeSpan.FromMinutes(1)) _recent.Dequeue();
            if (_recent.Count >= _requestsPerMinute)
                return Refuse(AbiCodes.RateLimited, "rate", host, $"more than {_requestsPerMinute} requests in a minute");
            _recent.Enqueue(now);
        }

        Interlocked.Increment(ref Requests);
        _metrics.NetworkRequest(_pluginId);
        if (body is not null && body.Length > _maxBodyBytes)
            return Refuse(AbiCodes.TooLarge, "request size", host, $"request body of {body.Length} bytes exceeds {_maxBodyBytes}");

        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(lifetime);
        deadline.CancelAfter(remaining < _timeout ? remaining : _timeout);
        try
        {
            for (var hop = 0; ; hop++)
            {
                if (uri!.Scheme is not ("http" or "https"))
                    return Refuse(AbiCodes.Denied, hop == 0 ? "scheme" : "redirect scheme", uri.Host, $"scheme '{uri.Scheme}' is not http or https");
                if (!Allowed(uri))
                    return Refuse(AbiCodes.Denied, hop == 0 ? "allow-list" : "redirect allow-list", uri.Host, $"{uri.Host}:{uri.Port} is not allowed by both the manifest and the policy");

                using var request = new HttpRequestMessage(method, uri);
                if (body is not null)
                {
                    request.Content = new ByteArrayContent(body);
                    Interlocked.Add(ref BytesSent, body.Length);
                    _metrics.NetworkSent(_pluginId, body.Length);
                }

                foreach (var (name, value) in headers.Where(h => !HopByHopHeaders.Contains(h.Key)))
                {
                    // Content-Type and its kin belong to the content; without a body they are dropped.
                    if (!request.Headers.TryAddWithoutValidation(name, value)) request.Content?.Headers.TryAddWithoutValidation(name, value);
                }

                using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, deadline.Token);
                span?.SetTag("http.response.status_code", (int)response.StatusCode);
                if ((int)response.StatusCode is 301 or 302 or 303 or 307 or 308 && response.Headers.Location is { } location)
                {
                    if (hop == MaxRedirects) return Refuse(AbiCodes.Denied, "redirect limit", uri.Host, $"more than {MaxRedirects} redirects");
                    uri = new Uri(uri, location);
                    if ((int)response.StatusCode == 303 || ((int)response.StatusCode is 301 or 302 && method == HttpMethod.Post))
                    {
                        method = HttpMethod.Get;
                        body = null;
                    }

                    continue;
                }

                var payload = await ReadLimitedAsync(response, deadline.Token);
                if (payload is null) return Refuse(AbiCodes.TooLarge, "response size", uri.Host, $"response body exceeds {_maxBodyBytes} bytes");
                Interlocked.Add(ref BytesReceived, payload.Length);
                _metrics.NetworkReceived(_pluginId, payload.Length);
                return (0, BrokerJson.Response(response, payload));
            }
        }
        catch (OperationCanceledException) when (lifetime.IsCancellationRequested)
        {
            return (AbiCodes.IoFailure, []); // cancelled: the plugin is being terminated or unloaded
        }
        catch (OperationCanceledException)
        {
            return (AbiCodes.Timeout, []);
        }
        catch (HttpRequestException e) when (Find<AddressRefusedException>(e) is { } refused)
        {
            return Refuse(AbiCodes.Denied, "address", refused.Host, refused.Message);
        }
        catch (HttpRequestException e) when (Find<OperationCanceledException>(e) is not null)
        {
            return (AbiCodes.Timeout, []);
        }
        catch (HttpRequestException)
        {
            return (AbiCodes.IoFailure, []);
        }
    }

    private bool Allowed(Uri uri) => AddressRules.HostAllowed(_manifestHosts, _grant.AllowedHosts, uri.Host, uri.Port, AddressRules.DefaultPort(uri.Scheme));

    /// <summary>Resolves and checks every address of the host this connection is for, then connects to a checked one.</summary>
    private async ValueTask<Stream> ConnectCheckedAsync(SocketsHttpConnectionContext context, CancellationToken cancellation)
    {
        var host = context.DnsEndPoint.Host;
        var port = context.DnsEndPoint.Port;
        var defaultPort = AddressRules.DefaultPort(context.InitialRequestMessage.RequestUri?.Scheme);
        var privateAllowed = _grant.AllowPrivateHosts.Any(p => p.Matches(host, port, defaultPort));
        var addresses = IPAddress.TryParse(host.Trim('[', ']'), out var literal) ? [literal] : await Dns.GetHostAddressesAsync(host, cancellation);
        if (addresses.Length == 0) throw new SocketException((int)SocketError.HostNotFound);
        foreach (var address in addresses)
        {
            if (!privateAllowed && AddressRules.IsNonPublic(address))
                throw new AddressRefusedException(host, $"{host} resolves to {address}, a loopback, private, link-local, multicast, unspecified or metadata address");
        }

        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(addresses, port, cancellation);
            return new NetworkStream(socket, ownsSocket: true);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    private async Task<byte[]?> ReadLimitedAsync(HttpResponseMessage response, CancellationToken cancellation)
    {
        if (response.Content.Headers.ContentLength > _maxBodyBytes) return null;
        await using var stream = await response.Content.ReadAsStreamAsync(cancellation);
        using var buffer = new MemoryStream();
        var chunk = new byte[16 * 1024];
        int read;
        while ((read = await stream.ReadAsync(chunk, cancellation)) > 0)
        {
            if (buffer.Length + read > _maxBodyBytes) return null; // read no further than the limit
            buffer.Write(chunk, 0, read);
        }

        return buffer.ToArray();
    }

    private (int, byte[]) Refuse(int code, string rule, string host, string message)
    {
        Interlocked.Increment(ref Refusals);
        DaemonTracing.RequestRefused(rule);
        _onRefusal(new NetworkRefusal(code, rule, host, $"plugin {_pluginId}: {message}"));
        return (code, []);
    }

    private static T? Find<T>(Exception? exception) where T : Exception
    {
        for (; exception is not null; exception = exception.InnerException)
            if (exception is T match) return match;
        return null;
    }

    public void Dispose() => _http.Dispose();

    private sealed class AddressRefusedException(string host, string message) : Exception(message)
    {
        public string Host { get; } = host;
    }
}
