using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;
using Grpc.Core;

namespace Connectias.Sandbox.Daemon.Tests;

/// <summary>Sandbox:MetricsListen: a real daemon's Prometheus scrape endpoint, scraped as Prometheus would, and its absence by default.</summary>
public sealed class MetricsTests
{
    private const string Hello = ",\"permissions\":[\"storage\",\"system_info\"]";

    [Fact]
    public async Task A_scrape_shows_a_plugins_calls_failures_by_reason_durations_and_load()
    {
        var port = FreePort();
        using var daemon = DaemonProcess.Start("{}", ("MetricsListen", $"127.0.0.1:{port}"));
        using var client = daemon.Client();
        await client.LoadAsync(daemon.Package("hello", "com.test.metered", Hello));
        Assert.Equal("Hello, Ada!", (await client.ExecuteAsync("com.test.metered", "greet", "Ada"u8.ToArray())).Output.ToStringUtf8());
        await ApiErrorTests.Refused(() => client.ExecuteAsync("com.test.metered", "fail"), StatusCode.Unknown, "PLUGIN_ERROR");

        using var http = new HttpClient();
        using var response = await http.GetAsync($"http://127.0.0.1:{port}/metrics");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(HttpVersion.Version11, response.Version);
        var scrape = await response.Content.ReadAsStringAsync();

        var plugin = "plugin_id=\"com.test.metered\"";
        Assert.True(Sample(scrape, "connectias_sandbox_calls_total", plugin) == 2, scrape);
        Assert.True(Sample(scrape, "connectias_sandbox_call_failures_total", plugin, "reason=\"PLUGIN_ERROR\"") == 1, scrape);
        Assert.True(Sample(scrape, "connectias_sandbox_call_duration_seconds_count", plugin) == 2, scrape);
        Assert.True(Sample(scrape, "connectias_sandbox_call_duration_seconds_bucket", plugin, "le=\"+Inf\"") == 2, scrape);
        Assert.InRange(Sample(scrape, "connectias_sandbox_call_duration_seconds_sum", plugin) ?? -1, 0.000001, 30);
        Assert.True(Sample(scrape, "connectias_sandbox_loads_total", plugin) == 1, scrape);
        Assert.True(Sample(scrape, "connectias_sandbox_fuel_consumed_total", plugin) > 0, scrape);
        Assert.True(Sample(scrape, "connectias_sandbox_plugin_memory_bytes", plugin) > 0, scrape);
        Assert.True(Sample(scrape, "connectias_sandbox_queue_depth", plugin) == 0, scrape);

        // The scrape port serves nothing else, and the daemon listens on TCP there only.
        Assert.Equal(HttpStatusCode.NotFound, (await http.GetAsync($"http://127.0.0.1:{port}/")).StatusCode);
        Assert.Equal([port], ListeningTcpPorts(daemon.Pid));
        Assert.Contains($"telemetry: metrics scrape endpoint http://127.0.0.1:{port}/metrics", daemon.Log);
    }

    [Fact]
    public async Task The_api_socket_does_not_serve_metrics()
    {
        using var daemon = DaemonProcess.Start("{}", ("MetricsListen", $"127.0.0.1:{FreePort()}"));
        using var http = new HttpClient(new SocketsHttpHandler
        {
            ConnectCallback = async (_, cancellation) =>
            {
                var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                await socket.ConnectAsync(new UnixDomainSocketEndPoint(daemon.SocketPath), cancellation);
                return new NetworkStream(socket, ownsSocket: true);
            },
        });
        using var request = new HttpRequestMessage(HttpMethod.Get, "http://localhost/metrics") { Version = HttpVersion.Version20, VersionPolicy = HttpVersionPolicy.RequestVersionExact };
        using var response = await http.SendAsync(request);
        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
    }

    [Fact]
    public void Without_MetricsListen_the_daemon_opens_no_tcp_listener()
    {
        using var daemon = DaemonProcess.Start("{}");
        Assert.Empty(ListeningTcpPorts(daemon.Pid));
        Assert.DoesNotContain("telemetry:", daemon.Log);
    }

    /// <summary>
    /// The value of the sample of <paramref name="metric"/> whose labels include every one of <paramref name="labels"/>
    /// (Prometheus text format: <c>name{label="value",...} value</c>), or null when there is none.
    /// </summary>
    internal static double? Sample(string scrape, string metric, params string[] labels)
    {
        foreach (Match match in Regex.Matches(scrape, $@"^{Regex.Escape(metric)}\{{(?<labels>[^}}]*)\}} (?<value>\S+)", RegexOptions.Multiline))
        {
            var present = match.Groups["labels"].Value.Split(',');
            if (labels.All(present.Contains)) return double.Parse(match.Groups["value"].Value, CultureInfo.InvariantCulture);
        }

        return null;
    }

    /// <summary>TCP ports a process listens on: its socket descriptors matched against the kernel's tables of listening sockets.</summary>
    internal static List<int> ListeningTcpPorts(int pid)
    {
        var inodes = Directory.GetFiles($"/proc/{pid}/fd")
            .Select(fd => new FileInfo(fd).LinkTarget)
            .Where(target => target?.StartsWith("socket:[", StringComparison.Ordinal) == true)
            .Select(target => target![8..^1])
            .ToHashSet();
        return new[] { "tcp", "tcp6" }
            .SelectMany(table => File.ReadLines($"/proc/{pid}/net/{table}").Skip(1))
            .Select(line => line.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Where(columns => columns[3] == "0A" && inodes.Contains(columns[9])) // 0A: LISTEN
            .Select(columns => int.Parse(columns[1].Split(':')[1], NumberStyles.HexNumber, CultureInfo.InvariantCulture))
            .Distinct()
            .ToList();
    }

    internal static int FreePort()
    {
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        return ((IPEndPoint)probe.LocalEndpoint).Port;
    }
}
