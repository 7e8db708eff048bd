using System.Text.Json;
using Connectias.Sandbox.Audit;
using Connectias.Sandbox.Audit.Tests;
using Connectias.Sandbox.Daemon.Events;
using Connectias.Sandbox.Daemon.Policy;
using Microsoft.Extensions.Logging.Abstractions;

namespace Connectias.Sandbox.Daemon.UnitTests;

/// <summary>
/// The audit trail over a log whose disk fills up: records that cannot be written are counted (and the metric says
/// so), <c>audit_failure: refuse</c> turns loads and executions away with AUDIT_LOG_FAILED while <c>continue</c> lets
/// them through, and the first record written afterwards says how many were lost.
/// </summary>
[Collection("telemetry")]
public sealed class AuditTrailTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("connectias-audit-trail-").FullName;
    private readonly TelemetryCapture _capture = new();
    private FullDiskStream? _disk;
    private AuditLog? _log;

    private string LogPath => Path.Combine(_directory, "audit", AuditLog.FileName);

    private AuditTrail Trail(AuditFailureMode mode, bool fullDisk = true)
    {
        _log = fullDisk
            ? new AuditLog(Path.GetDirectoryName(LogPath)!, path => _disk = new FullDiskStream(new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.ReadWrite, 1)))
            : new AuditLog(Path.GetDirectoryName(LogPath)!);
        var policyFile = Path.Combine(_directory, "policy.json");
        File.WriteAllText(policyFile, mode == AuditFailureMode.Continue ? """{ "audit_failure": "continue" }""" : "{}");
        return new AuditTrail(_log, new EventHub(), AdminPolicy.Load(policyFile), _capture.Metrics, NullLogger<AuditTrail>.Instance);
    }

    private List<(string Event, JsonElement Details)> Records() =>
        File.ReadLines(LogPath).Select(line => JsonDocument.Parse(line).RootElement)
            .Select(root => (root.GetProperty("event").GetString()!, root.GetProperty("details").Clone())).ToList();

    private Dictionary<string, long> LostByEvent() =>
        _capture.Collect("connectias.sandbox.audit.lost_records")?.MetricPoints
            .ToDictionary(point => (string)TelemetryCapture.Tags(point)["event"]!, point => point.GetSumLong()) ?? [];

    [Fact]
    public void Under_refuse_a_log_that_cannot_be_written_refuses_loads_and_calls_until_a_record_is_written_again()
    {
        var trail = Trail(AuditFailureMode.Refuse);
        Assert.True(trail.Record(AuditEvents.DaemonStart, ""));
        trail.EnsureWritable("com.example.a"); // writable: nothing to refuse
        var lostBefore = trail.LostRecords;

        _disk!.SpaceLeft = 10;
        Assert.False(trail.Record(AuditEvents.PluginLoad, "com.example.a"));
        var undone = Assert.Throws<SandboxException>(() => trail.EnsureNoneLostSince(lostBefore, "com.example.a"));
        Assert.Equal(ErrorReason.AuditLogFailed, undone.Reason);
        Assert.Contains("the load is undone", undone.Message);
        var refused = Assert.Throws<SandboxException>(() => trail.EnsureWritable("com.example.a"));
        Assert.Equal(ErrorReason.AuditLogFailed, refused.Reason);
        Assert.Contains("No space left on device", refused.Message);
        Assert.Equal("com.example.a", refused.Metadata["plugin_id"]);
        Assert.False(trail.Record(AuditEvents.PluginExecuteFailed, "com.example.a"));
        Assert.Equal(2, trail.LostRecords);
        Assert.Equal(new Dictionary<string, long> { ["PLUGIN_LOAD"] = 1, ["PLUGIN_EXECUTE_FAILED"] = 1 }, LostByEvent());
        Assert.Equal(new AuditVerification(true, 1, null, null, null), AuditVerifier.Verify(LogPath)); // nothing torn in between

        _disk.SpaceLeft = null; // space again: the next admission writes the record that ends the episode, and passes
        trail.EnsureWritable("com.example.a");
        trail.EnsureWritable("com.example.a");
        Assert.True(trail.Record(AuditEvents.PluginUnload, "com.example.a"));

        Assert.Equal([AuditEvents.DaemonStart, AuditEvents.AuditLogResumed, AuditEvents.PluginUnload], Records().Select(r => r.Event));
        var resumed = Records()[1].Details;
        Assert.Equal(2, resumed.GetProperty("lost_records").GetInt64());
        Assert.Equal("refuse", resumed.GetProperty("audit_failure").GetString());
        Assert.Contains("No space left on device", resumed.GetProperty("error").GetString());
        Assert.True(AuditVerifier.Verify(LogPath).Intact);
        trail.EnsureNoneLostSince(trail.LostRecords, "com.example.b"); // nothing lost since: a load goes on
    }

    [Fact]
    public void Under_continue_loads_and_calls_go_on_and_every_lost_record_is_counted()
    {
        var trail = Trail(AuditFailureMode.Continue);
        Assert.True(trail.Record(AuditEvents.DaemonStart, ""));
        _disk!.SpaceLeft = 0;
        for (var i = 0; i < 3; i++) Assert.False(trail.Record(AuditEvents.PluginExecuteFailed, "com.example.a"));
        trail.EnsureWritable("com.example.a");
        trail.EnsureNoneLostSince(0, "com.example.a");
        Assert.Equal(3, trail.LostRecords);
        Assert.Equal(new Dictionary<string, long> { ["PLUGIN_EXECUTE_FAILED"] = 3 }, LostByEvent());

        _disk.SpaceLeft = null; // the next record is preceded by the one that says what was lost
        Assert.True(trail.Record(AuditEvents.PluginLoad, "com.example.b"));
        Assert.Equal([AuditEvents.DaemonStart, AuditEvents.AuditLogResumed, AuditEvents.PluginLoad], Records().Select(r => r.Event));
        Assert.Equal(3, Records()[1].Details.GetProperty("lost_records").GetInt64());
        Assert.Equal("continue", Records()[1].Details.GetProperty("audit_failure").GetString());
        Assert.True(AuditVerifier.Verify(LogPath).Intact);
    }

    [Fact]
    public void A_second_episode_counts_its_own_lost_records()
    {
        var trail = Trail(AuditFailureMode.Continue);
        _disk!.SpaceLeft = 0;
        Assert.False(trail.Record(AuditEvents.PluginLoad, "com.example.a"));
        _disk.SpaceLeft = null;
        trail.EnsureWritable("com.example.a");
        _disk.SpaceLeft = 0;
        Assert.False(trail.Record(AuditEvents.PluginLoad, "com.example.a"));
        Assert.False(trail.Record(AuditEvents.PluginLoad, "com.example.a"));
        _disk.SpaceLeft = null;
        trail.EnsureWritable("com.example.a");
        Assert.Equal([1L, 2L], Records().Select(r => r.Details.GetProperty("lost_records").GetInt64()));
        Assert.Equal(3, trail.LostRecords);
    }

    [Fact]
    public void At_start_a_record_cut_off_the_end_of_the_log_is_logged_and_recorded_and_the_chain_verifies()
    {
        using (var first = new AuditLog(Path.GetDirectoryName(LogPath)!)) first.Append(AuditEvents.DaemonStart, "");
        File.AppendAllText(LogPath, "{\"seq\":2,\"ts\":\"2026-");
        var trail = Trail(AuditFailureMode.Refuse, fullDisk: false);
        trail.RecordRecoveryAtStart();
        var recovered = Assert.Single(Records(), r => r.Event == AuditEvents.AuditLogRecovered).Details;
        Assert.Equal(20, recovered.GetProperty("bytes_dropped").GetInt64());
        Assert.Equal(new AuditVerification(true, 2, null, null, null), AuditVerifier.Verify(LogPath));
    }

    [Fact]
    public void At_start_a_log_that_ended_whole_gets_no_recovery_record()
    {
        var trail = Trail(AuditFailureMode.Refuse, fullDisk: false);
        trail.Record(AuditEvents.DaemonStart, "");
        trail.RecordRecoveryAtStart();
        Assert.Equal([AuditEvents.DaemonStart], Records().Select(r => r.Event));
    }

    public void Dispose()
    {
        _log?.Dispose();
        _capture.Dispose();
        Directory.Delete(_directory, recursive: true);
    }
}
