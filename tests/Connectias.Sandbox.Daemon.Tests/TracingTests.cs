using System.Diagnostics;
using System.Text.Json;
using Connectias.Sandbox.Contracts;
using Connectias.Sandbox.V1;
using Google.Protobuf;
using Grpc.Core;

namespace Connectias.Sandbox.Daemon.Tests;

/// <summary>A daemon exporting traces over OTLP/HTTP to an in-test receiver, which is also the server its fetch plugins call.</summary>
public sealed class TracedDaemon : IAsyncLifetime
{
    public OtlpReceiver Receiver { get; } = new();
    public DaemonProcess Daemon { get; private set; } = null!;

    public Task InitializeAsync()
    {
        var port = Receiver.Port;
        var network = $$"""
            "permissions": ["network"], "allowed_hosts": ["127.0.0.1:{{port}}"], "allow_private_hosts": ["127.0.0.1:{{port}}"]
            """;
        Daemon = DaemonProcess.Start(new DaemonStartInfo
        {
            PolicyJson = $$"""
                {
                  "plugins": {
                    "com.test.propagating": { {{network}}, "propagate_trace_context": true },
                    "com.test.discreet": { {{network}} }
                  }
                }
                """,
            Settings = [("OtlpEndpoint", Receiver.Endpoint), ("OtlpProtocol", "http/protobuf")],
            Environment = [("OTEL_BSP_SCHEDULE_DELAY", "100")], // export each batch of spans after 0.1 s, not 5 s
        });
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        Daemon.Dispose();
        await Receiver.DisposeAsync();
    }
}

/// <summary>Spans for LoadPlugin, Execute (queue, worker) and brokered requests, and where a caller's traceparent goes.</summary>
public sealed class TracingTests(TracedDaemon traced) : IClassFixture<TracedDaemon>
{
    private DaemonProcess Daemon => traced.Daemon;
    private OtlpReceiver Receiver => traced.Receiver;

    [Fact]
    public async Task Execute_continues_the_callers_traceparent_with_queue_and_worker_spans()
    {
        using (var client = Daemon.Client()) await client.LoadAsync(Daemon.Package("hello", "com.test.traced", ",\"permissions\":[\"storage\",\"system_info\"]"));
        var (traceId, callerSpanId) = NewCallerContext();
        await ExecuteAsync("com.test.traced", "greet", "Ada"u8.ToArray(), traceId, callerSpanId);

        // The spans end (and are exported, in batches 0.1 s apart) worker and queue first, then Execute, then the server's.
        var spans = await Receiver.SpansOf(traceId, s => s.Any(span => span.Name == "worker") && s.Any(span => span.Name == "Execute")
                                                          && s.Any(span => span.ParentSpanId == callerSpanId));
        var execute = Assert.Single(spans, span => span.Name == "Execute");
        Assert.Equal("com.test.traced", execute.Attributes["plugin_id"]);
        Assert.Equal("greet", execute.Attributes["command"]);
        // Execute is a child of ASP.NET Core's span for the request, which is the child of the caller's span.
        var server = Assert.Single(spans, span => span.SpanId == execute.ParentSpanId);
        Assert.Equal(callerSpanId, server.ParentSpanId);
        Assert.Equal(execute.SpanId, Assert.Single(spans, span => span.Name == "queue").ParentSpanId);
        Assert.Equal(execute.SpanId, Assert.Single(spans, span => span.Name == "worker").ParentSpanId);
    }

    [Fact]
    public async Task A_failed_load_is_a_LoadPlugin_span_with_its_reason()
    {
        var (traceId, callerSpanId) = NewCallerContext();
        using var channel = UnixSocketChannel.Create(Daemon.SocketPath);
        var host = new PluginHost.PluginHostClient(channel);
        var unsigned = Daemon.Package("hello", "com.test.unsigned", sign: false);
        await Assert.ThrowsAsync<RpcException>(() => host.LoadPluginAsync(new LoadPluginRequest { Package = ByteString.CopyFrom(unsigned) }, Headers(traceId, callerSpanId)).ResponseAsync);

        var load = Assert.Single(await Receiver.SpansOf(traceId, s => s.Any(span => span.Name == "LoadPlugin")), span => span.Name == "LoadPlugin");
        Assert.Equal("INVALID_SIGNATURE", load.Attributes["reason"]);
        Assert.Equal("(bytes)", load.Attributes["source"]);
    }

    [Fact]
    public async Task A_brokered_request_carries_traceparent_only_where_the_policy_allows_it()
    {
        using (var client = Daemon.Client())
        {
            var manifest = $",\"permissions\":[\"network\"],\"allowed_hosts\":[\"127.0.0.1:{Receiver.Port}\"]";
            await client.LoadAsync(Daemon.Package("fetch", "com.test.propagating", manifest));
            await client.LoadAsync(Daemon.Package("fetch", "com.test.discreet", manifest));
        }

        var (allowedTrace, allowedCaller) = NewCallerContext();
        var allowed = await FetchHeadersAsync("com.test.propagating", allowedTrace, allowedCaller);
        var spans = await Receiver.SpansOf(allowedTrace, s => s.Any(span => span.Name == "http_request") && s.Any(span => span.Name == "worker"));
        var request = Assert.Single(spans, span => span.Name == "http_request");
        Assert.Equal(Assert.Single(spans, span => span.Name == "worker").SpanId, request.ParentSpanId);
        Assert.Equal("200", request.Attributes["http.response.status_code"]);
        // The server sees the daemon's span for the request as its parent, in the caller's trace, and no baggage.
        Assert.Equal($"00-{allowedTrace}-{request.SpanId}-01", allowed.GetValueOrDefault("traceparent"));
        Assert.Equal("caller=1", allowed.GetValueOrDefault("tracestate"));
        Assert.False(allowed.ContainsKey("baggage"), string.Join(", ", allowed.Keys));

        var (discreetTrace, discreetCaller) = NewCallerContext();
        var discreet = await FetchHeadersAsync("com.test.discreet", discreetTrace, discreetCaller);
        Assert.Empty(discreet); // no traceparent, tracestate, baggage or Request-Id
        var unpropagated = await Receiver.SpansOf(discreetTrace, s => s.Any(span => span.Name == "http_request"));
        Assert.Equal("com.test.discreet", Assert.Single(unpropagated, span => span.Name == "http_request").Attributes["plugin_id"]); // traced all the same
    }

    private async Task<Dictionary<string, string>> FetchHeadersAsync(string pluginId, string traceId, string callerSpanId)
    {
        var request = JsonSerializer.SerializeToUtf8Bytes(new { url = $"{Receiver.Endpoint}/headers" });
        var response = JsonDocument.Parse(await ExecuteAsync(pluginId, "strict", request, traceId, callerSpanId)).RootElement;
        Assert.Equal(200, response.GetProperty("status").GetInt32());
        var body = Convert.FromBase64String(response.GetProperty("body_base64").GetString()!);
        return JsonSerializer.Deserialize<Dictionary<string, string>>(body)!;
    }

    /// <summary>Execute over raw gRPC with the caller's trace context (and baggage) in the metadata, as an instrumented client sends it.</summary>
    private async Task<byte[]> ExecuteAsync(string pluginId, string command, byte[] args, string traceId, string callerSpanId)
    {
        using var channel = UnixSocketChannel.Create(Daemon.SocketPath);
        var response = await new PluginHost.PluginHostClient(channel)
            .ExecuteAsync(new ExecuteRequest { PluginId = pluginId, Command = command, Args = ByteString.CopyFrom(args) }, Headers(traceId, callerSpanId));
        return response.Output.ToByteArray();
    }

    private static Metadata Headers(string traceId, string callerSpanId) => new()
    {
        { "traceparent", $"00-{traceId}-{callerSpanId}-01" },
        { "tracestate", "caller=1" },
        { "baggage", "user=someone%40example.com" },
    };

    private static (string TraceId, string SpanId) NewCallerContext() => (ActivityTraceId.CreateRandom().ToHexString(), ActivitySpanId.CreateRandom().ToHexString());
}

/// <summary>A daemon that does not trace has no span of its own to name, so it propagates nothing, whatever the policy says.</summary>
public sealed class UntracedPropagationTests
{
    [Fact]
    public async Task Without_tracing_no_request_carries_a_traceparent_even_where_the_policy_allows_it()
    {
        await using var server = new OtlpReceiver();
        var network = $$"""
            "permissions": ["network"], "allowed_hosts": ["127.0.0.1:{{server.Port}}"], "allow_private_hosts": ["127.0.0.1:{{server.Port}}"]
            """;
        using var daemon = DaemonProcess.Start($$"""{ "plugins": { "com.test.propagating": { {{network}}, "propagate_trace_context": true } } }""");
        using var client = daemon.Client();
        await client.LoadAsync(daemon.Package("fetch", "com.test.propagating", $",\"permissions\":[\"network\"],\"allowed_hosts\":[\"127.0.0.1:{server.Port}\"]"));

        // The caller's context still reaches ASP.NET Core's request Activity (created for logging even when nothing
        // traces), and the broker's tasks inherit the LoadPlugin request's: neither may leak out.
        using var channel = UnixSocketChannel.Create(daemon.SocketPath);
        var request = JsonSerializer.SerializeToUtf8Bytes(new { url = $"{server.Endpoint}/headers" });
        var response = await new PluginHost.PluginHostClient(channel).ExecuteAsync(
            new ExecuteRequest { PluginId = "com.test.propagating", Command = "strict", Args = ByteString.CopyFrom(request) },
            new Metadata { { "traceparent", $"00-{ActivityTraceId.CreateRandom().ToHexString()}-{ActivitySpanId.CreateRandom().ToHexString()}-01" } });
        var body = Convert.FromBase64String(JsonDocument.Parse(response.Output.Memory).RootElement.GetProperty("body_base64").GetString()!);
        Assert.Empty(JsonSerializer.Deserialize<Dictionary<string, string>>(body)!);
    }
}
