using System.Diagnostics;
using System.Text;
using System.Text.Json;
using Connectias.Sandbox.V1;
using Grpc.Core;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Connectias.Sandbox.Daemon.Tests;

/// <summary>A real HTTP server on 127.0.0.1 for the network tests, with endpoints for each rule.</summary>
public sealed class TestHttpServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    public int Port { get; }
    public int AbortedRequests;
    public int SlowRequestsStarted;

    /// <summary>Requests that reached /gate/{name}, by name; each waits there until <see cref="OpenGates"/>.</summary>
    public System.Collections.Concurrent.ConcurrentDictionary<string, int> GateArrivals { get; } = new();
    private readonly TaskCompletionSource _gatesOpen = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public void OpenGates() => _gatesOpen.TrySetResult();

    public TestHttpServer()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        _app = builder.Build();
        _app.MapGet("/json", () => Results.Json(new { city = "Zürich", temperature = 21 }));
        _app.MapPost("/echo", async (HttpRequest request) =>
        {
            using var body = new MemoryStream();
            await request.Body.CopyToAsync(body);
            return Results.Bytes(body.ToArray(), request.ContentType ?? "application/octet-stream");
        });
        _app.MapGet("/redirect", (string to) => Results.Redirect(to));
        _app.MapGet("/loop/{n:int}", (int n) => Results.Redirect($"/loop/{n + 1}"));
        _app.MapGet("/big", () => Results.Bytes(new byte[100 * 1024], "application/octet-stream"));
        _app.MapGet("/endless", async (HttpResponse response, CancellationToken aborted) =>
        {
            var chunk = new byte[64 * 1024];
            try
            {
                while (!aborted.IsCancellationRequested) await response.Body.WriteAsync(chunk, aborted);
            }
            catch (OperationCanceledException)
            {
            }
        });
        _app.MapGet("/gate/{name}", async (string name) =>
        {
            GateArrivals.AddOrUpdate(name, 1, (_, count) => count + 1);
            await _gatesOpen.Task.WaitAsync(TimeSpan.FromSeconds(30));
            return Results.Text(name);
        });
        _app.MapGet("/slow", async (CancellationToken aborted) =>
        {
            Interlocked.Increment(ref SlowRequestsStarted);
            try
            {
                await Task.Delay(TimeSpan.FromSeconds(20), aborted);
            }
            catch (OperationCanceledException)
            {
                Interlocked.Increment(ref AbortedRequests);
            }

            return Results.Ok();
        });
        _app.StartAsync().GetAwaiter().GetResult();
        Port = new Uri(_app.Urls.First()).Port;
    }

    public async ValueTask DisposeAsync() => await _app.DisposeAsync();
}

/// <summary>http_request through the daemon's broker (SPEC §3), each rule with its test.</summary>
public sealed class NetworkTests : IAsyncLifetime
{
    private readonly TestHttpServer _server = new();
    private DaemonProcess _daemon = null!;

    private int Port => _server.Port;

    public Task InitializeAsync()
    {
        var policy = $$"""
            {
              "plugins": {
                "com.test.fetch": {
                  "permissions": ["network"],
                  "allowed_hosts": ["127.0.0.1:{{Port}}", "localhost:{{Port}}", "api.example.com"],
                  "allow_private_hosts": ["127.0.0.1:{{Port}}"],
                  "limits": { "max_body_bytes": 65536, "network_timeout_ms": 15000 }
                },
                "com.test.fetch-hasty": {
                  "permissions": ["network"],
                  "allowed_hosts": ["127.0.0.1:{{Port}}"],
                  "allow_private_hosts": ["127.0.0.1:{{Port}}"],
                  "limits": { "network_timeout_ms": 800 }
                },
                "com.test.fetch-patient": {
                  "permissions": ["network"],
                  "allowed_hosts": ["127.0.0.1:{{Port}}"],
                  "allow_private_hosts": ["127.0.0.1:{{Port}}"],
                  "limits": { "network_timeout_ms": 30000 }
                },
                "com.test.fetch-limited": {
                  "permissions": ["network"],
                  "allowed_hosts": ["127.0.0.1:{{Port}}"],
                  "allow_private_hosts": ["127.0.0.1:{{Port}}"],
                  "limits": { "requests_per_minute": 3 }
                },
                "com.test.fetch-hammer": {
                  "permissions": ["network"],
                  "allowed_hosts": ["127.0.0.1:{{Port}}"],
                  "allow_private_hosts": ["127.0.0.1:{{Port}}"],
                  "limits": { "requests_per_minute": 1 }
                }
              }
            }
            """;
        _daemon = DaemonProcess.Start(policy);
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        _daemon.Dispose();
        await _server.DisposeAsync();
    }

    private async Task Load(string id, string manifestHosts)
    {
        using var client = _daemon.Client();
        await client.LoadAsync(_daemon.Package("fetch", id, $",\"permissions\":[\"network\"],\"allowed_hosts\":[{manifestHosts}]"));
    }

    [Fact]
    public async Task A_call_cancelled_while_it_waits_in_the_workers_pipeline_never_reaches_the_plugin()
    {
        await Load("com.test.fetch-patient", $"\"127.0.0.1:{Port}\"");
        // The first call holds the plugin in http_request at the gate; the next two are forwarded behind it.
        var first = Fetch($"http://127.0.0.1:{Port}/gate/first", id: "com.test.fetch-patient");
        await Eventually(() => _server.GateArrivals.ContainsKey("first"));
        using var cancelSecond = new CancellationTokenSource();
        using var client = _daemon.Client();
        var second = client.ExecuteAsync("com.test.fetch-patient", "request", FetchRequest($"http://127.0.0.1:{Port}/gate/second"), cancellation: cancelSecond.Token);
        var third = Fetch($"http://127.0.0.1:{Port}/gate/third", id: "com.test.fetch-patient");
        await Task.Delay(300); // both forwarded (the pipeline sends at once)
        await cancelSecond.CancelAsync();
        await Task.Delay(300); // the cancel reaches the worker while the first call still waits
        _server.OpenGates();

        Assert.Equal(200, (await first).GetProperty("status").GetInt32());
        Assert.Equal(200, (await third).GetProperty("status").GetInt32());
        var cancelled = await Assert.ThrowsAnyAsync<Exception>(() => second);
        Assert.True(cancelled is OperationCanceledException or RpcException { StatusCode: StatusCode.Cancelled }, cancelled.ToString());
        Assert.False(_server.GateArrivals.ContainsKey("second"), "the cancelled call ran in the plugin");
        var info = await client.GetAsync("com.test.fetch-patient");
        Assert.Equal(PluginState.Ready, info.State);
        Assert.Equal(2UL, info.Usage.Calls);
    }

    private static async Task Eventually(Func<bool> condition)
    {
        var clock = Stopwatch.StartNew();
        while (!condition() && clock.Elapsed < TimeSpan.FromSeconds(20)) await Task.Delay(20);
        Assert.True(condition());
    }

    private Task LoadFetch() => Load("com.test.fetch", $"\"127.0.0.1:{Port}\",\"localhost:{Port}\",\"127.0.0.2:{Port}\"");

    private static byte[] FetchRequest(string url, string method = "GET", string? body = null) => Encoding.UTF8.GetBytes(JsonSerializer.Serialize(new Dictionary<string, object?>
    {
        ["method"] = method,
        ["url"] = url,
        ["headers"] = new Dictionary<string, string> { ["Content-Type"] = "text/plain", ["X-Test"] = "1" },
        ["body_base64"] = body is null ? null : Convert.ToBase64String(Encoding.UTF8.GetBytes(body)),
    }));

    private async Task<JsonElement> Fetch(string url, string method = "GET", string? body = null, string id = "com.test.fetch")
    {
        using var client = _daemon.Client();
        var response = await client.ExecuteAsync(id, "request", FetchRequest(url, method, body));
        return JsonDocument.Parse(response.Output.Memory).RootElement.Clone();
    }

    private static int Error(JsonElement response) => response.TryGetProperty("error", out var code) ? code.GetInt32() : 0;

    [Fact]
    public async Task A_plugin_fetches_json_from_an_allowed_host_and_it_is_accounted()
    {
        await LoadFetch();
        var response = await Fetch($"http://127.0.0.1:{Port}/json");
        Assert.Equal(200, response.GetProperty("status").GetInt32());
        var body = JsonDocument.Parse(Convert.FromBase64String(response.GetProperty("body_base64").GetString()!)).RootElement;
        Assert.Equal("Zürich", body.GetProperty("city").GetString());
        Assert.StartsWith("application/json", response.GetProperty("headers").GetProperty("content-type").GetString());

        var echoed = await Fetch($"http://127.0.0.1:{Port}/echo", "POST", "hello server");
        Assert.Equal("hello server", Encoding.UTF8.GetString(Convert.FromBase64String(echoed.GetProperty("body_base64").GetString()!)));

        using var client = _daemon.Client();
        var usage = (await client.GetAsync("com.test.fetch")).Usage;
        Assert.Equal(2UL, usage.NetworkRequests);
        Assert.Equal(12UL, usage.NetworkBytesSent);
        Assert.True(usage.NetworkBytesReceived > 12);
    }

    [Fact]
    public async Task Only_http_and_https_are_allowed()
    {
        await LoadFetch();
        Assert.Equal(-2, Error(await Fetch($"ftp://127.0.0.1:{Port}/file")));
        Assert.Equal(-2, Error(await Fetch("file:///etc/passwd")));
    }

    [Fact]
    public async Task A_host_must_be_allowed_by_both_manifest_and_policy()
    {
        await LoadFetch();
        Assert.Equal(-2, Error(await Fetch($"http://127.0.0.2:{Port}/json")));   // manifest only
        Assert.Equal(-2, Error(await Fetch("https://api.example.com/v1")));       // policy only
        Assert.Equal(-2, Error(await Fetch($"http://127.0.0.1:{Port + 1}/json"))); // wrong port
    }

    [Fact]
    public async Task A_name_resolving_to_a_private_address_is_refused_unless_the_policy_allows_that_host()
    {
        await LoadFetch();
        // localhost is on both allow-lists but only 127.0.0.1:PORT may reach a private address.
        Assert.Equal(-2, Error(await Fetch($"http://localhost:{Port}/json")));
        Assert.Equal(200, (await Fetch($"http://127.0.0.1:{Port}/json")).GetProperty("status").GetInt32());
    }

    [Fact]
    public async Task Redirects_are_followed_and_each_hop_is_checked()
    {
        await LoadFetch();
        Assert.Equal(200, (await Fetch($"http://127.0.0.1:{Port}/redirect?to=/json")).GetProperty("status").GetInt32());
        Assert.Equal(-2, Error(await Fetch($"http://127.0.0.1:{Port}/redirect?to=http://localhost:{Port}/json")));   // to a private address
        Assert.Equal(-2, Error(await Fetch($"http://127.0.0.1:{Port}/redirect?to=http://169.254.169.254/latest/meta-data")));
        Assert.Equal(-2, Error(await Fetch($"http://127.0.0.1:{Port}/loop/0")));                                       // more than 5 hops
    }

    [Fact]
    public async Task The_request_rate_is_limited_per_plugin()
    {
        await Load("com.test.fetch-limited", $"\"127.0.0.1:{Port}\"");
        for (var i = 0; i < 3; i++) Assert.Equal(200, (await Fetch($"http://127.0.0.1:{Port}/json", id: "com.test.fetch-limited")).GetProperty("status").GetInt32());
        Assert.Equal(-3, Error(await Fetch($"http://127.0.0.1:{Port}/json", id: "com.test.fetch-limited")));
    }

    [Fact]
    public async Task Bodies_over_the_limit_are_refused_and_an_endless_body_is_read_no_further()
    {
        await LoadFetch();
        Assert.Equal(-5, Error(await Fetch($"http://127.0.0.1:{Port}/echo", "POST", new string('x', 70_000))));
        Assert.Equal(-5, Error(await Fetch($"http://127.0.0.1:{Port}/big")));
        var clock = Stopwatch.StartNew();
        Assert.Equal(-5, Error(await Fetch($"http://127.0.0.1:{Port}/endless")));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5));
        using var client = _daemon.Client();
        Assert.True((await client.GetAsync("com.test.fetch")).Usage.NetworkBytesReceived < 70_000);
    }

    [Fact]
    public async Task A_slow_endpoint_times_out_and_a_plugin_that_gives_up_gets_NETWORK_TIMEOUT()
    {
        await Load("com.test.fetch-hasty", $"\"127.0.0.1:{Port}\"");
        var clock = Stopwatch.StartNew();
        Assert.Equal(-4, Error(await Fetch($"http://127.0.0.1:{Port}/slow", id: "com.test.fetch-hasty")));
        Assert.InRange(clock.ElapsedMilliseconds, 600, 10_000);

        using var client = _daemon.Client();
        var request = Encoding.UTF8.GetBytes($$"""{"url":"http://127.0.0.1:{{Port}}/slow"}""");
        await ApiErrorTests.Refused(() => client.ExecuteAsync("com.test.fetch-hasty", "strict", request), StatusCode.DeadlineExceeded, "NETWORK_TIMEOUT", "com.test.fetch-hasty");
        Assert.Equal(PluginState.Ready, (await client.GetAsync("com.test.fetch-hasty")).State); // an ordinary failure, not a termination
    }

    [Fact]
    public async Task Every_refusal_is_audited_with_host_and_rule()
    {
        await LoadFetch();
        await Fetch($"http://localhost:{Port}/json");
        await Fetch("https://api.example.com/v1");
        var lines = File.ReadAllLines(_daemon.AuditPath).Where(line => line.Contains("\"kind\":\"network\"")).ToList();
        Assert.Contains(lines, line => line.Contains("\"rule\":\"address\"") && line.Contains("\"host\":\"localhost\"") && line.Contains("SECURITY_VIOLATION"));
        Assert.Contains(lines, line => line.Contains("\"rule\":\"allow-list\"") && line.Contains("\"host\":\"api.example.com\""));
        using var client = _daemon.Client();
        Assert.Equal(2UL, (await client.GetAsync("com.test.fetch")).Usage.NetworkRefusals);
    }

    [Fact]
    public async Task Repeated_refusals_are_audited_once_and_then_as_one_record_with_their_exact_count()
    {
        const string id = "com.test.fetch-hammer";
        const int refusals = 300;
        await Load(id, $"\"127.0.0.1:{Port}\"");
        Assert.Equal(200, (await Fetch($"http://127.0.0.1:{Port}/json", id: id)).GetProperty("status").GetInt32());
        for (var i = 0; i < refusals; i++) Assert.Equal(-3, Error(await Fetch($"http://127.0.0.1:{Port}/json", id: id)));

        using var client = _daemon.Client();
        Assert.Equal((ulong)refusals, (await client.GetAsync(id)).Usage.NetworkRefusals); // each one still counted where it is shown
        var rate = NetworkRecords(id, "rate");
        Assert.Single(rate); // the first, at once; the rest only when the window closes
        Assert.False(rate[0].TryGetProperty("count", out _));

        await client.UnloadAsync(id); // closes the window: one record for the rest, before the cleanup report
        rate = NetworkRecords(id, "rate");
        Assert.Equal(2, rate.Count);
        Assert.Equal(refusals - 1, rate[1].GetProperty("count").GetInt32());
        Assert.Equal("127.0.0.1", rate[1].GetProperty("host").GetString());
        Assert.Equal(60_000, rate[1].GetProperty("window_ms").GetInt32());
        var events = _daemon.AuditRecords().Where(r => r.PluginId == id).Select(r => r.Event).ToList();
        Assert.True(events.LastIndexOf("RESOURCE_EXHAUSTION") < events.IndexOf("CLEANUP_REPORT"), string.Join(", ", events));
        Assert.True(Audit.AuditVerifier.Verify(_daemon.AuditPath).Intact);
        Assert.Single(_daemon.Log.Split('\n'), line => line.Contains($"network request of {id} refused", StringComparison.Ordinal));
    }

    /// <summary>The details of the plugin's network refusal records by <paramref name="rule"/>, in order.</summary>
    private List<JsonElement> NetworkRecords(string pluginId, string rule) => _daemon.AuditRecords()
        .Where(r => r.PluginId == pluginId && r.Details.TryGetProperty("kind", out var kind) && kind.GetString() == "network" && r.Details.GetProperty("rule").GetString() == rule)
        .Select(r => r.Details).ToList();

    [Fact]
    public async Task Unloading_cancels_a_request_in_flight()
    {
        await Load("com.test.fetch-patient", $"\"127.0.0.1:{Port}\"");
        using var client = _daemon.Client();
        var request = Encoding.UTF8.GetBytes($$"""{"url":"http://127.0.0.1:{{Port}}/slow"}""");
        var call = client.ExecuteAsync("com.test.fetch-patient", "request", request);
        var started = Stopwatch.StartNew();
        while (Volatile.Read(ref _server.SlowRequestsStarted) == 0 && started.Elapsed < TimeSpan.FromSeconds(10)) await Task.Delay(10);
        var clock = Stopwatch.StartNew();
        var report = await client.UnloadAsync("com.test.fetch-patient");
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(4), $"unload took {clock.Elapsed}");
        Assert.DoesNotContain(report.Issues, issue => issue.Kind == CleanupIssueKind.NetworkConnectionOpen);

        // The plugin saw its request fail (-6) instead of waiting 20 s, and the server saw it aborted.
        var response = await call;
        Assert.Equal(-6, Error(JsonDocument.Parse(response.Output.Memory).RootElement));
        var waited = Stopwatch.StartNew();
        while (Volatile.Read(ref _server.AbortedRequests) == 0 && waited.Elapsed < TimeSpan.FromSeconds(5)) await Task.Delay(20);
        Assert.Equal(1, Volatile.Read(ref _server.AbortedRequests));
    }

    [Fact]
    public async Task A_plugin_without_the_network_permission_cannot_import_http_request()
    {
        using var client = _daemon.Client();
        var error = await ApiErrorTests.Refused(() => client.LoadAsync(_daemon.Package("fetch", "com.test.nonet")), StatusCode.PermissionDenied, "PERMISSION_DENIED");
        Assert.Equal("network", error.Metadata["permission"]);
    }
}
