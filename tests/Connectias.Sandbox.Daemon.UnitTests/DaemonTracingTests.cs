using System.Diagnostics;
using Connectias.Sandbox.Daemon.Telemetry;

namespace Connectias.Sandbox.Daemon.UnitTests;

/// <summary>The daemon's spans: who their parents are, what they carry, and what outgoing requests may say about them.</summary>
[Collection("telemetry")]
public sealed class DaemonTracingTests : IDisposable
{
    private const string CallerTraceId = "0af7651916cd43dd8448eb211c80319c";
    private const string CallerSpanId = "b7ad6b7169203331";
    private readonly TelemetryCapture _capture = new();

    [Fact]
    public void Execute_continues_the_callers_traceparent_and_its_queue_and_worker_spans_are_its_children()
    {
        Activity.Current = null;
        // What ASP.NET Core does with a request whose metadata carries a traceparent.
        using var request = new Activity("Microsoft.AspNetCore.Hosting.HttpRequestIn").SetParentId($"00-{CallerTraceId}-{CallerSpanId}-01").Start();
        var execute = DaemonTracing.StartExecute("com.test.traced", "greet")!;
        Assert.Equal(CallerTraceId, execute.TraceId.ToHexString());
        Assert.Equal(request.SpanId, execute.ParentSpanId);
        Assert.Equal("com.test.traced", execute.GetTagItem("plugin_id"));

        var queuedAt = DateTimeOffset.UtcNow.AddMilliseconds(-50);
        using (DaemonTracing.StartWorker(execute, queuedAt))
        {
        }

        DaemonTracing.Failed(execute, new SandboxException(ErrorReason.PluginError, "the plugin said no"));
        execute.Dispose();

        var queue = Assert.Single(_capture.Spans, span => span.OperationName == "queue");
        var worker = Assert.Single(_capture.Spans, span => span.OperationName == "worker");
        Assert.All([queue, worker], span => Assert.Equal(execute.SpanId, span.ParentSpanId));
        Assert.Equal(queuedAt.UtcDateTime, queue.StartTimeUtc);
        Assert.True(queue.Duration >= TimeSpan.FromMilliseconds(50), $"queue span lasted {queue.Duration}");
        Assert.True(worker.StartTimeUtc >= queue.StartTimeUtc + queue.Duration);
        Assert.Equal(ActivityStatusCode.Error, execute.Status);
        Assert.Equal("PLUGIN_ERROR", execute.GetTagItem("reason"));
    }

    [Fact]
    public void A_call_that_is_not_traced_gets_no_queue_or_worker_span()
    {
        Assert.Null(DaemonTracing.StartWorker(execute: null, DateTimeOffset.UtcNow));
        Assert.Empty(_capture.Spans);
    }

    [Fact]
    public void A_brokered_request_is_a_child_of_the_call_in_flight_and_never_of_the_stale_ambient_activity()
    {
        Activity.Current = null;
        using var stale = new Activity("the LoadPlugin request that opened the broker stream").Start();
        Activity.Current = null;
        var call = DaemonTracing.Source.StartActivity("worker")!;
        Activity.Current = stale; // what the broker's background flow inherited

        using (var request = DaemonTracing.StartBrokeredRequest("com.test.fetch", call)!)
        {
            Assert.Equal(call.TraceId, request.TraceId);
            Assert.Equal(call.SpanId, request.ParentSpanId);
            Assert.Equal(ActivityKind.Client, request.Kind);
        }

        call.Dispose();
        Activity.Current = stale;
        using var afterTheCall = DaemonTracing.StartBrokeredRequest("com.test.fetch", call)!; // a request from plugin_cleanup, say
        Assert.Equal(default, afterTheCall.ParentSpanId);
        Assert.NotEqual(stale.TraceId, afterTheCall.TraceId);
    }

    [Fact]
    public void A_refused_request_names_its_rule_and_a_failed_one_is_an_error()
    {
        Activity.Current = null;
        using (var request = DaemonTracing.StartBrokeredRequest("com.test.fetch", callInFlight: null)!)
        {
            DaemonTracing.DescribeRequest(request, HttpMethod.Post, new Uri("https://api.example.com:8443/secret?token=1"));
            DaemonTracing.RequestRefused("allow-list");
            DaemonTracing.EndRequest(request, -2);
        }

        var span = Assert.Single(_capture.Spans);
        Assert.Equal("allow-list", span.GetTagItem("rule"));
        Assert.Equal("POST", span.GetTagItem("http.request.method"));
        Assert.Equal("api.example.com", span.GetTagItem("server.address"));
        Assert.Equal(8443, span.GetTagItem("server.port"));
        Assert.DoesNotContain(span.TagObjects, tag => tag.Value is string text && text.Contains("token", StringComparison.Ordinal));
        Assert.Equal(ActivityStatusCode.Error, span.Status);
    }

    [Fact]
    public void Outgoing_headers_name_the_brokers_span_only_where_the_policy_allows_and_never_carry_baggage()
    {
        Activity.Current = null;
        using var request = DaemonTracing.StartBrokeredRequest("com.test.fetch", callInFlight: null)!;
        request.TraceStateString = "vendor=1";
        request.AddBaggage("user", "someone@example.com");
        // The HTTP handler's own activity, a child of ours that nothing records: it is what the propagator is handed.
        using var handler = new Activity("System.Net.Http.HttpRequestOut").Start();

        var allowed = Inject(BrokerPropagators.For(propagateTraceContext: true), handler);
        Assert.Equal(new Dictionary<string, string> { ["traceparent"] = request.Id!, ["tracestate"] = "vendor=1" }, allowed);
        Assert.Empty(Inject(BrokerPropagators.For(propagateTraceContext: false), handler));
        Activity.Current = null;
        using var unrelated = new Activity("not ours").Start();
        Assert.Empty(Inject(BrokerPropagators.For(propagateTraceContext: true), unrelated));
    }

    private static Dictionary<string, string> Inject(DistributedContextPropagator propagator, Activity activity)
    {
        var headers = new Dictionary<string, string>();
        propagator.Inject(activity, headers, (carrier, name, value) => ((Dictionary<string, string>)carrier!)[name] = value);
        return headers;
    }

    public void Dispose()
    {
        Activity.Current = null;
        _capture.Dispose();
    }
}
