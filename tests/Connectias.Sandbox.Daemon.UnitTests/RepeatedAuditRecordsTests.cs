using System.Diagnostics;
using System.Text.Json;
using Connectias.Sandbox.Audit;
using Connectias.Sandbox.Daemon.Events;
using Connectias.Sandbox.Daemon.Hosting;
using Connectias.Sandbox.Daemon.Policy;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;

namespace Connectias.Sandbox.Daemon.UnitTests;

/// <summary>
/// Identical records a plugin can repeat at will: the first written, the rest of the window counted into one record
/// with the exact count, written when the window ends, at unload, or when the daemon stops.
/// </summary>
public sealed class RepeatedAuditRecordsTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("connectias-repeats-").FullName;
    private readonly ServiceProvider _meters = new ServiceCollection().AddMetrics().BuildServiceProvider();
    private readonly AuditLog _log;
    private readonly BackgroundTasks _tasks = new(NullLogger<BackgroundTasks>.Instance);

    public RepeatedAuditRecordsTests() => _log = new AuditLog(_directory);

    private RepeatedAuditRecords Repeats(int windowMs) => new(
        new AuditTrail(_log, new EventHub(), AdminPolicy.BuiltIn, LifecycleHarness.Metrics(_meters), NullLogger<AuditTrail>.Instance),
        new DaemonOptions { AuditRepeatWindowMs = windowMs }, _tasks, NullLogger<RepeatedAuditRecords>.Instance);

    private static Action<Utf8JsonWriter> Refusal(string host) => json =>
    {
        json.WriteString("rule", "rate");
        json.WriteString("host", host);
    };

    private List<(string Event, string PluginId, JsonElement Details)> Records() =>
        File.ReadLines(_log.Path).Select(line => JsonDocument.Parse(line).RootElement)
            .Select(root => (root.GetProperty("event").GetString()!, root.GetProperty("plugin_id").GetString()!, root.GetProperty("details").Clone())).ToList();

    [Fact]
    public void The_first_of_a_kind_is_written_the_rest_counted_and_written_as_one_at_unload()
    {
        var repeats = Repeats(60_000);
        Assert.True(repeats.Record(AuditEvents.ResourceExhaustion, "com.example.a", "network rate -3", Refusal("first.example")));
        for (var i = 0; i < 499; i++) Assert.False(repeats.Record(AuditEvents.ResourceExhaustion, "com.example.a", "network rate -3", Refusal($"h{i}.example")));
        Assert.True(repeats.Record(AuditEvents.SecurityViolation, "com.example.a", "network allow-list -2", Refusal("other.example"))); // another kind
        Assert.True(repeats.Record(AuditEvents.ResourceExhaustion, "com.example.b", "network rate -3", Refusal("first.example")));  // another plugin
        Assert.False(repeats.Record(AuditEvents.ResourceExhaustion, "com.example.b", "network rate -3", Refusal("first.example")));
        Assert.Equal(3, Records().Count);

        repeats.CloseAll("com.example.a");
        var records = Records();
        Assert.Equal(4, records.Count);
        var summary = records[3];
        Assert.Equal((AuditEvents.ResourceExhaustion, "com.example.a"), (summary.Event, summary.PluginId));
        Assert.Equal(499, summary.Details.GetProperty("count").GetInt64());
        Assert.Equal("h498.example", summary.Details.GetProperty("host").GetString()); // the last one's details
        Assert.Equal(60_000, summary.Details.GetProperty("window_ms").GetInt32());
        Assert.True(string.CompareOrdinal(summary.Details.GetProperty("first_ts").GetString(), summary.Details.GetProperty("last_ts").GetString()) <= 0);
        Assert.False(records[0].Details.TryGetProperty("count", out _));

        repeats.CloseAll("com.example.a"); // nothing open any more: nothing written twice
        Assert.Equal(4, Records().Count);
        Assert.True(repeats.Record(AuditEvents.ResourceExhaustion, "com.example.a", "network rate -3", Refusal("again.example"))); // a new window
        Assert.True(AuditVerifier.Verify(_log.Path).Intact);
    }

    [Fact]
    public async Task A_window_that_ends_writes_its_count_and_the_next_record_opens_a_new_one()
    {
        var repeats = Repeats(300);
        repeats.Record(AuditEvents.ResourceExhaustion, "com.example.a", "network rate -3", Refusal("x"));
        repeats.Record(AuditEvents.ResourceExhaustion, "com.example.a", "network rate -3", Refusal("x"));
        repeats.Record(AuditEvents.ResourceExhaustion, "com.example.a", "network rate -3", Refusal("x"));
        var clock = Stopwatch.StartNew();
        while (Records().Count < 2 && clock.Elapsed < TimeSpan.FromSeconds(10)) await Task.Delay(20);
        Assert.Equal(2, Assert.Single(Records(), r => r.Details.TryGetProperty("count", out _)).Details.GetProperty("count").GetInt64());
        Assert.True(clock.Elapsed >= TimeSpan.FromMilliseconds(200), $"the window closed after {clock.Elapsed}");

        Assert.True(repeats.Record(AuditEvents.ResourceExhaustion, "com.example.a", "network rate -3", Refusal("x")));
        Assert.Equal(3, Records().Count);
    }

    [Fact]
    public async Task A_window_with_nothing_repeated_ends_without_a_record()
    {
        var repeats = Repeats(50);
        repeats.Record(AuditEvents.ResourceExhaustion, "com.example.a", "network rate -3", Refusal("x"));
        await _tasks.WaitAllAsync(TimeSpan.FromSeconds(10));
        Assert.Single(Records());
    }

    [Fact]
    public async Task When_the_daemon_stops_every_open_window_writes_its_count_at_once()
    {
        var repeats = Repeats(3_600_000);
        for (var i = 0; i < 10; i++) repeats.Record(AuditEvents.SecurityViolation, "com.example.a", "network address -2", Refusal("x"));
        _tasks.BeginStopping();
        var clock = Stopwatch.StartNew();
        await _tasks.WaitAllAsync(TimeSpan.FromSeconds(10));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5));
        Assert.Equal(9, Records()[1].Details.GetProperty("count").GetInt64());
    }

    [Fact]
    public void A_window_of_0_writes_every_record()
    {
        var repeats = Repeats(0);
        for (var i = 0; i < 5; i++) Assert.True(repeats.Record(AuditEvents.ResourceExhaustion, "com.example.a", "network rate -3", Refusal("x")));
        Assert.Equal(5, Records().Count);
        Assert.Equal(0, _tasks.Count);
    }

    public void Dispose()
    {
        _tasks.BeginStopping();
        _tasks.WaitAllAsync(TimeSpan.FromSeconds(5)).GetAwaiter().GetResult();
        _log.Dispose();
        _meters.Dispose();
        Directory.Delete(_directory, recursive: true);
    }
}
