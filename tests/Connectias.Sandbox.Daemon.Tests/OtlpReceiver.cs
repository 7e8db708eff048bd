using System.Collections.Concurrent;
using System.Diagnostics;
using Google.Protobuf;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Connectias.Sandbox.Daemon.Tests;

/// <summary>A span as an OTLP exporter sent it: ids in lower-case hex, the parent empty for a root span.</summary>
public sealed record ReceivedSpan(string TraceId, string SpanId, string ParentSpanId, string Name, IReadOnlyDictionary<string, string> Attributes);

/// <summary>
/// A real HTTP server on 127.0.0.1 playing two parts for the tracing tests: an OpenTelemetry collector's OTLP/HTTP
/// receiver (POST /v1/traces and /v1/metrics, protobuf), and a server a plugin calls through the broker
/// (GET /headers answers with the trace headers it received).
/// </summary>
public sealed class OtlpReceiver : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ConcurrentQueue<ReceivedSpan> _spans = new();

    public OtlpReceiver()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        _app = builder.Build();
        _app.MapPost("/v1/traces", async (HttpRequest request) =>
        {
            using var body = new MemoryStream();
            await request.Body.CopyToAsync(body);
            foreach (var span in DecodeSpans(ByteString.CopyFrom(body.ToArray()))) _spans.Enqueue(span);
            return Results.Bytes([], "application/x-protobuf"); // an empty ExportTraceServiceResponse: all accepted
        });
        _app.MapPost("/v1/metrics", () => Results.Bytes([], "application/x-protobuf"));
        _app.MapGet("/headers", (HttpRequest request) => Results.Json(new[] { "traceparent", "tracestate", "baggage", "Request-Id" }
            .Where(name => request.Headers.ContainsKey(name))
            .ToDictionary(name => name, name => request.Headers[name].ToString())));
        _app.StartAsync().GetAwaiter().GetResult();
        Port = new Uri(_app.Urls.First()).Port;
    }

    public int Port { get; }

    public string Endpoint => $"http://127.0.0.1:{Port}";

    /// <summary>Waits until the spans of <paramref name="traceId"/> satisfy <paramref name="complete"/>, then returns them all.</summary>
    public async Task<List<ReceivedSpan>> SpansOf(string traceId, Func<List<ReceivedSpan>, bool> complete)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            var spans = _spans.Where(span => span.TraceId == traceId).ToList();
            if (complete(spans)) return spans;
            if (clock.Elapsed > TimeSpan.FromSeconds(30))
                throw new TimeoutException($"the spans of trace {traceId} did not arrive; got: {string.Join(", ", spans.Select(s => s.Name))}");
            await Task.Delay(100);
        }
    }

    // ExportTraceServiceRequest { repeated ResourceSpans resource_spans = 1 } → ResourceSpans { repeated ScopeSpans scope_spans = 2 }
    // → ScopeSpans { repeated Span spans = 2 }: the field numbers of opentelemetry/proto/trace/v1/trace.proto.
    private static IEnumerable<ReceivedSpan> DecodeSpans(ByteString request) =>
        from resourceSpans in Fields(request).Where(f => f.Number == 1)
        from scopeSpans in Fields(resourceSpans.Bytes!).Where(f => f.Number == 2)
        from span in Fields(scopeSpans.Bytes!).Where(f => f.Number == 2)
        select DecodeSpan(span.Bytes!);

    // Span { bytes trace_id = 1; bytes span_id = 2; bytes parent_span_id = 4; string name = 5; repeated KeyValue attributes = 9 }
    private static ReceivedSpan DecodeSpan(ByteString span)
    {
        var fields = Fields(span);
        string Hex(int number) => Convert.ToHexStringLower(fields.FirstOrDefault(f => f.Number == number).Bytes?.ToByteArray() ?? []);
        var attributes = new Dictionary<string, string>();
        foreach (var attribute in fields.Where(f => f.Number == 9))
        {
            // KeyValue { string key = 1; AnyValue value = 2 }, AnyValue { string string_value = 1; bool bool_value = 2; int64 int_value = 3 }
            var keyValue = Fields(attribute.Bytes!);
            var key = keyValue.First(f => f.Number == 1).Bytes!.ToStringUtf8();
            var value = Fields(keyValue.First(f => f.Number == 2).Bytes!).FirstOrDefault();
            attributes[key] = value.Bytes?.ToStringUtf8() ?? ((long)value.Varint).ToString(System.Globalization.CultureInfo.InvariantCulture);
        }

        return new ReceivedSpan(Hex(1), Hex(2), Hex(4), fields.First(f => f.Number == 5).Bytes!.ToStringUtf8(), attributes);
    }

    private readonly record struct Field(int Number, ByteString? Bytes, ulong Varint);

    /// <summary>A message's fields in order: length-delimited ones as bytes, varints as numbers, fixed ones skipped.</summary>
    private static List<Field> Fields(ByteString message)
    {
        var fields = new List<Field>();
        var input = message.CreateCodedInput();
        uint tag;
        while ((tag = input.ReadTag()) != 0)
        {
            var number = WireFormat.GetTagFieldNumber(tag);
            switch (WireFormat.GetTagWireType(tag))
            {
                case WireFormat.WireType.LengthDelimited: fields.Add(new Field(number, input.ReadBytes(), 0)); break;
                case WireFormat.WireType.Varint: fields.Add(new Field(number, null, input.ReadUInt64())); break;
                default: input.SkipLastField(); break;
            }
        }

        return fields;
    }

    public async ValueTask DisposeAsync() => await _app.DisposeAsync();
}
