using System.Text.Json;
using Connectias.Sandbox.Audit;
using Connectias.Sandbox.V1;
using Grpc.Core;

namespace Connectias.Sandbox.Daemon.Tests;

/// <summary>
/// A real daemon whose audit log's disk fills up (a tmpfs of its own, <see cref="AuditDisk"/>): no record is torn,
/// <c>audit_failure: refuse</c> turns loads and calls away with AUDIT_LOG_FAILED while the daemon keeps answering,
/// <c>continue</c> serves and counts what it could not record, and once there is space again the log says how many
/// records were lost and its chain verifies.
/// </summary>
public sealed class AuditFullDiskTests
{
    private const string First = "com.test.disk-first";
    private const string Second = "com.test.disk-second";
    private const string Hello = ",\"permissions\":[\"storage\",\"system_info\"]";

    // What is left of the log's last page once the disk is full: less than any record, so the next one is cut short
    // by ENOSPC part-way (and must be cut off again).
    private const int Slack = 100;

    [Fact]
    public async Task Under_refuse_loads_and_calls_are_AUDIT_LOG_FAILED_while_the_disk_is_full_and_served_again_once_it_is_not()
    {
        using var disk = new AuditDisk();
        using var daemon = DaemonProcess.Start(new DaemonStartInfo { StateDir = disk.StateDir });
        using var client = daemon.Client();
        await client.LoadAsync(daemon.Package("hello", First, Hello));
        Task Fail(string command) => ApiErrorTests.Refused(() => client.ExecuteAsync(First, command), StatusCode.Unknown, "PLUGIN_ERROR");
        await disk.FillLeavingAsync(Slack, await disk.MeasureFailedCallRecordAsync(Fail), Fail);
        var full = File.ReadAllBytes(disk.AuditPath);

        // The daemon learns at the next record: the load's own. It is undone, and refused.
        await ApiErrorTests.Refused(() => client.LoadAsync(daemon.Package("hello", Second, Hello)), StatusCode.Unavailable, "AUDIT_LOG_FAILED", Second);
        Assert.Empty(daemon.PluginRunDirectories(Second)); // its worker is gone
        await ApiErrorTests.Refused(() => client.ExecuteAsync(First, "greet", "Ada"u8.ToArray()), StatusCode.Unavailable, "AUDIT_LOG_FAILED", First);
        await ApiErrorTests.Refused(() => client.LoadAsync(daemon.Package("hello", Second, Hello)), StatusCode.Unavailable, "AUDIT_LOG_FAILED", Second);

        // It still answers, and the log holds whole records only: every write cut short was cut off again.
        var listed = await client.ListAsync();
        Assert.Equal([(First, PluginState.Ready)], listed.Select(p => (p.PluginId, p.State)));
        Assert.Equal(full, File.ReadAllBytes(disk.AuditPath));
        Assert.True(AuditVerifier.Verify(disk.AuditPath).Intact);

        disk.Free();
        Assert.Equal("Hello, Ada!", (await client.ExecuteAsync(First, "greet", "Ada"u8.ToArray())).Output.ToStringUtf8());
        await client.LoadAsync(daemon.Package("hello", Second, Hello));

        var lostLines = LostRecordLines(daemon.Log);
        // The undone load: its PLUGIN_LOAD and PERMISSION_GRANT, the unload and cleanup report that undid it, its
        // LOAD_REJECTED, and the second load's LOAD_REJECTED (the call refused at admission is not audited anyway).
        Assert.Equal(
            ["PLUGIN_LOAD of " + Second, "PERMISSION_GRANT of " + Second, "PLUGIN_UNLOAD of " + Second, "CLEANUP_REPORT of " + Second,
             "LOAD_REJECTED of " + Second, "LOAD_REJECTED of " + Second],
            lostLines);
        var resumed = Assert.Single(daemon.AuditRecords(), r => r.Event == "AUDIT_LOG_RESUMED").Details;
        Assert.Equal(lostLines.Count, resumed.GetProperty("lost_records").GetInt32());
        Assert.Equal("refuse", resumed.GetProperty("audit_failure").GetString());
        Assert.Contains("AUDIT LOG FAILED", daemon.Log);
        Assert.Contains("can be written again: 6 record(s) were lost", daemon.Log);
        Assert.Equal(0, Cli.CliApp.Run(["audit", "verify", "--state-dir", disk.StateDir], new StringWriter(), new StringWriter()));
    }

    [Fact]
    public async Task Under_continue_calls_and_loads_are_served_while_the_disk_is_full_and_every_lost_record_is_counted()
    {
        var port = MetricsTests.FreePort();
        using var disk = new AuditDisk();
        using var daemon = DaemonProcess.Start(new DaemonStartInfo
        {
            StateDir = disk.StateDir,
            PolicyJson = """{ "audit_failure": "continue" }""",
            Settings = [("MetricsListen", $"127.0.0.1:{port}")],
        });
        using var client = daemon.Client();
        await client.LoadAsync(daemon.Package("hello", First, Hello));
        Task Fail(string command) => ApiErrorTests.Refused(() => client.ExecuteAsync(First, command), StatusCode.Unknown, "PLUGIN_ERROR");
        await disk.FillLeavingAsync(Slack, await disk.MeasureFailedCallRecordAsync(Fail), Fail);
        var full = File.ReadAllBytes(disk.AuditPath);

        for (var i = 0; i < 5; i++) await Fail("fail"); // served: the plugin's own error, each record lost
        await client.LoadAsync(daemon.Package("hello", Second, Hello));
        Assert.Equal("Hello, Ada!", (await client.ExecuteAsync(Second, "greet", "Ada"u8.ToArray())).Output.ToStringUtf8());

        Assert.Equal(full, File.ReadAllBytes(disk.AuditPath));
        using var http = new HttpClient();
        var scrape = await http.GetStringAsync($"http://127.0.0.1:{port}/metrics");
        Assert.True(MetricsTests.Sample(scrape, "connectias_sandbox_audit_lost_records_total", "event=\"PLUGIN_EXECUTE_FAILED\"") == 5, scrape);
        Assert.True(MetricsTests.Sample(scrape, "connectias_sandbox_audit_lost_records_total", "event=\"PLUGIN_LOAD\"") == 1, scrape);
        Assert.True(MetricsTests.Sample(scrape, "connectias_sandbox_audit_lost_records_total", "event=\"PERMISSION_GRANT\"") == 1, scrape);

        disk.Free();
        await Fail("fail"); // the first record written again is preceded by the count of those lost
        var records = daemon.AuditRecords().ToList();
        var resumedAt = records.FindIndex(r => r.Event == "AUDIT_LOG_RESUMED");
        Assert.Equal(7, records[resumedAt].Details.GetProperty("lost_records").GetInt32());
        Assert.Equal("continue", records[resumedAt].Details.GetProperty("audit_failure").GetString());
        Assert.Equal("PLUGIN_EXECUTE_FAILED", records[resumedAt + 1].Event);
        Assert.Equal(7, LostRecordLines(daemon.Log).Count);
        Assert.Equal(0, Cli.CliApp.Run(["audit", "verify", "--state-dir", disk.StateDir], new StringWriter(), new StringWriter()));
    }

    /// <summary>"EVENT of PLUGIN" of each "audit record lost" line of the daemon's log, in order.</summary>
    private static List<string> LostRecordLines(string log) => log.Split('\n')
        .Where(line => line.Contains("audit record lost:", StringComparison.Ordinal))
        .Select(line => JsonDocument.Parse(line).RootElement.GetProperty("State"))
        .Select(state => $"{state.GetProperty("Event").GetString()} of {state.GetProperty("PluginId").GetString()}")
        .ToList();
}
