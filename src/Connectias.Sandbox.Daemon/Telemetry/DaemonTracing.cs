using System.Diagnostics;

namespace Connectias.Sandbox.Daemon.Telemetry;

/// <summary>
/// The daemon's spans on the <see cref="SourceName"/> ActivitySource: LoadPlugin, Execute (with its children
/// <c>queue</c> and <c>worker</c>) and each brokered <c>http_request</c>. Without a TracerProvider (the default)
/// nothing listens, every Start returns null and every helper does nothing. LoadPlugin and Execute start in the
/// gRPC request's flow, so they are children of ASP.NET Core's request span, which continues the caller's W3C
/// <c>traceparent</c>; the others run on background work whose ambient Activity is stale (the flow that started a
/// worker's call loop or broker stream), so they take their parent explicitly.
/// </summary>
internal static class DaemonTracing
{
    /// <summary>A caller chooses the command: its tag is cut here, so one span cannot carry megabytes.</summary>
    private const int MaxCommandTag = 128;

    public const string SourceName = DaemonMetrics.MeterName;

    public static readonly ActivitySource Source = new(SourceName, CoreVersion.Current);

    public static Activity? StartLoad(string source) => Source.StartActivity("LoadPlugin")?.SetTag("source", source);

    public static Activity? StartExecute(string pluginId, string command) =>
        Source.StartActivity("Execute")?.SetTag("plugin_id", pluginId).SetTag("command", command.Length > MaxCommandTag ? command[..MaxCommandTag] : command);

    /// <summary>
    /// Records the <c>queue</c> span of a call that waited since <paramref name="queuedAt"/> and starts its <c>worker</c>
    /// span; both children of the call's <paramref name="execute"/> span, and nothing when the call is not traced.
    /// </summary>
    public static Activity? StartWorker(Activity? execute, DateTimeOffset queuedAt)
    {
        if (execute is null) return null;
        Source.StartActivity("queue", ActivityKind.Internal, execute.Context, startTime: queuedAt)?.Stop();
        return Source.StartActivity("worker", ActivityKind.Internal, execute.Context);
    }

    /// <summary>
    /// Starts the span of one brokered request (every redirect hop included), a child of the worker span of the
    /// call in flight when there is one, else a root span (a request from plugin_init or plugin_cleanup). It also
    /// becomes the ambient Activity, which is what the HTTP handler's propagator sees.
    /// </summary>
    public static Activity? StartBrokeredRequest(string pluginId, Activity? callInFlight)
    {
        // The broker runs on tasks that inherited the flow of whatever opened the worker's broker stream; never
        // let that stale context be a parent or leak into an outgoing header.
        Activity.Current = null;
        var parent = callInFlight is { IsStopped: false } ? callInFlight.Context : default;
        return Source.StartActivity("http_request", ActivityKind.Client, parent)?.SetTag("plugin_id", pluginId);
    }

    /// <summary>The request's method and target, once parsed; the path and query stay out (they may carry secrets).</summary>
    public static void DescribeRequest(Activity? request, HttpMethod method, Uri uri) => request?
        .SetTag("http.request.method", method.Method)
        .SetTag("url.scheme", uri.Scheme)
        .SetTag("server.address", uri.Host)
        .SetTag("server.port", uri.Port);

    /// <summary>What the plugin got back: 0 (with the response, whose status the broker tagged), or the ABI's negative code.</summary>
    public static void EndRequest(Activity? request, int code)
    {
        if (request is null) return;
        request.SetTag("abi_code", code);
        if (code != 0) request.SetStatus(ActivityStatusCode.Error, $"http_request returned {code}");
    }

    /// <summary>Names the broker rule that refused the request in flight on this flow.</summary>
    public static void RequestRefused(string rule)
    {
        if (Activity.Current is { OperationName: "http_request" } request && request.Source == Source) request.SetTag("rule", rule);
    }

    /// <summary>Marks a LoadPlugin or Execute span failed with the SPEC reason of <paramref name="error"/>.</summary>
    public static void Failed(Activity? span, Exception error) =>
        span?.SetTag("reason", DaemonMetrics.ReasonOf(error)).SetStatus(ActivityStatusCode.Error, error.Message);
}
