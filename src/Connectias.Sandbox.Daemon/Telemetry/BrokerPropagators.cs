using System.Diagnostics;

namespace Connectias.Sandbox.Daemon.Telemetry;

/// <summary>
/// What a plugin's outgoing HTTP requests say about the trace they belong to, set as the broker's
/// <c>SocketsHttpHandler.ActivityHeadersPropagator</c>: nothing at all unless the policy grants the plugin
/// <c>propagate_trace_context</c>, since a trace id ties the plugin's traffic to the caller's request for anyone the
/// plugin talks to.
/// </summary>
internal static class BrokerPropagators
{
    private static readonly DistributedContextPropagator NoOutput = DistributedContextPropagator.CreateNoOutputPropagator();

    public static DistributedContextPropagator For(bool propagateTraceContext) => propagateTraceContext ? TraceParentOnly.Instance : NoOutput;

    /// <summary>
    /// W3C <c>traceparent</c> and <c>tracestate</c> naming the daemon's <c>http_request</c> span, and nothing else: no
    /// <c>baggage</c> (the caller's key-value pairs stay inside) and no legacy <c>Request-Id</c>.
    /// </summary>
    internal sealed class TraceParentOnly : DistributedContextPropagator
    {
        public static readonly TraceParentOnly Instance = new();
        private static readonly string[] Names = ["traceparent", "tracestate"];

        public override IReadOnlyCollection<string> Fields => Names;

        public override void Inject(Activity? activity, object? carrier, PropagatorSetterCallback? setter)
        {
            // The HTTP handler hands over its own HttpRequestOut activity, a child of ours that no exporter records;
            // the header names our span instead, so the server's span hangs under one the trace actually has.
            while (activity is not null && activity.Source.Name != DaemonTracing.SourceName) activity = activity.Parent;
            if (activity is not { IdFormat: ActivityIdFormat.W3C, Id: { } traceParent } || setter is null) return;
            setter(carrier, "traceparent", traceParent);
            if (activity.TraceStateString is { Length: > 0 } state) setter(carrier, "tracestate", state);
        }

        // Outward only: the broker never takes a trace context from what it receives.
        public override void ExtractTraceIdAndState(object? carrier, PropagatorGetterCallback? getter, out string? traceId, out string? traceState)
        {
            traceId = null;
            traceState = null;
        }

        public override IEnumerable<KeyValuePair<string, string?>>? ExtractBaggage(object? carrier, PropagatorGetterCallback? getter) => null;
    }
}
