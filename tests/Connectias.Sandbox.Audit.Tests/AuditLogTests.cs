using System.Text;
using System.Text.Json;

namespace Connectias.Sandbox.Audit.Tests;

/// <summary>
/// The writer at a full disk: a record is in the file whole or not at all, so the chain still verifies afterwards;
/// and what a crash or an earlier full disk left at the end (a record cut short) is cut off when the log is opened.
/// </summary>
public sealed class AuditLogTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("connectias-audit-log-").FullName;
    private FullDiskStream? _disk;

    private string LogPath => Path.Combine(_directory, AuditLog.FileName);

    /// <summary>A log over <see cref="FullDiskStream"/>, which the test then fills or breaks.</summary>
    private AuditLog OpenOnDisk() => new(_directory, path =>
        _disk = new FullDiskStream(new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.ReadWrite, 1)));

    private static void WriteRecords(AuditLog log, int count)
    {
        for (var i = 0; i < count; i++) log.Append(AuditEvents.PluginExecuteFailed, "com.example.a", json => json.WriteString("message", $"failure {i}"));
    }

    private AuditVerification Verify() => AuditVerifier.Verify(LogPath);

    [Fact]
    public void A_write_that_runs_out_of_space_part_way_leaves_the_file_exactly_as_it_was()
    {
        using var log = OpenOnDisk();
        WriteRecords(log, 3);
        var before = File.ReadAllBytes(LogPath);

        _disk!.SpaceLeft = 40; // the record's first 40 bytes reach the file, then ENOSPC
        var error = Assert.Throws<IOException>(() => log.Append(AuditEvents.LoadRejected, "com.example.b"));
        Assert.Contains("No space left", error.Message);
        Assert.Equal(before, File.ReadAllBytes(LogPath));
        Assert.True(Verify().Intact);

        _disk.SpaceLeft = null; // space again: the next record follows the last whole one, with the next seq
        var record = log.Append(AuditEvents.PluginLoad, "com.example.b");
        Assert.Equal(4, record.Seq);
        Assert.Equal(new AuditVerification(true, 4, null, null, null), Verify());
    }

    [Fact]
    public void A_record_whose_flush_fails_is_cut_off_again()
    {
        using var log = OpenOnDisk();
        WriteRecords(log, 2);
        var before = File.ReadAllBytes(LogPath);

        _disk!.FailFlush = true;
        Assert.Throws<IOException>(() => log.Append(AuditEvents.PluginLoad, "com.example.b"));
        _disk.FailFlush = false;
        Assert.Equal(before, File.ReadAllBytes(LogPath));

        Assert.Equal(3, log.Append(AuditEvents.PluginLoad, "com.example.b").Seq);
        Assert.True(Verify().Intact);
    }

    [Fact]
    public void When_the_torn_record_cannot_be_cut_off_nothing_is_written_after_it_until_it_is()
    {
        using var log = OpenOnDisk();
        WriteRecords(log, 2);
        var before = File.ReadAllBytes(LogPath);

        _disk!.SpaceLeft = 40;
        _disk.FailTruncate = true;
        Assert.Throws<IOException>(() => log.Append(AuditEvents.PluginLoad, "com.example.b"));
        Assert.Equal(before.Length + 40, new FileInfo(LogPath).Length); // the torn start is still there

        _disk.SpaceLeft = null; // space again, but the torn start still cannot be removed: no record may follow it
        Assert.Throws<IOException>(() => log.Append(AuditEvents.PluginLoad, "com.example.c"));
        Assert.Equal(before.Length + 40, new FileInfo(LogPath).Length);

        _disk.FailTruncate = false;
        Assert.Equal(3, log.Append(AuditEvents.PluginLoad, "com.example.d").Seq);
        var after = File.ReadAllBytes(LogPath);
        Assert.Equal(before, after[..before.Length]);
        Assert.Equal(new AuditVerification(true, 3, null, null, null), Verify());
    }

    [Fact]
    public void Opening_a_log_that_ends_inside_a_record_cuts_that_record_off_and_the_chain_continues()
    {
        using (var first = new AuditLog(_directory)) WriteRecords(first, 3);
        var whole = File.ReadAllBytes(LogPath);
        var torn = Encoding.UTF8.GetBytes("{\"seq\":4,\"ts\":\"2026-11-26T10:00:00.000000Z\",\"event\":\"PLUGIN_LO");
        File.AppendAllText(LogPath, Encoding.UTF8.GetString(torn));

        var broken = Verify();
        Assert.False(broken.Intact);
        Assert.Equal(4, broken.BadLine);
        Assert.Contains("ends inside a record", broken.Problem);

        using var log = new AuditLog(_directory);
        Assert.Equal(new AuditTailRecovery(torn.Length, whole.Length), log.RecoveredAtOpen);
        Assert.Equal(whole, File.ReadAllBytes(LogPath));
        Assert.Equal(4, log.Append(AuditEvents.AuditLogRecovered, "").Seq);
        Assert.Equal(new AuditVerification(true, 4, null, null, null), Verify());
    }

    [Fact]
    public void A_log_that_ends_whole_is_opened_as_it_is()
    {
        using (var first = new AuditLog(_directory)) WriteRecords(first, 2);
        var whole = File.ReadAllBytes(LogPath);
        using var log = new AuditLog(_directory);
        Assert.Null(log.RecoveredAtOpen);
        Assert.Equal(whole, File.ReadAllBytes(LogPath));
        Assert.Equal(3, log.Append(AuditEvents.DaemonStart, "").Seq);
        Assert.True(Verify().Intact);
    }

    [Fact]
    public void A_log_holding_only_the_start_of_its_first_record_starts_again_from_the_genesis()
    {
        File.WriteAllText(LogPath, "{\"seq\":1,\"ts\":");
        using var log = new AuditLog(_directory);
        Assert.Equal(new AuditTailRecovery(14, 0), log.RecoveredAtOpen);
        var record = log.Append(AuditEvents.DaemonStart, "");
        Assert.Equal((1L, AuditLog.Genesis), (record.Seq, record.Previous));
        Assert.True(Verify().Intact);
    }

    [Fact]
    public void The_last_record_is_found_when_it_and_the_torn_end_span_many_read_blocks()
    {
        var big = new string('x', 200_000); // longer than the 64 KiB blocks the end is read in
        using (var first = new AuditLog(_directory))
        {
            WriteRecords(first, 1);
            first.Append(AuditEvents.CleanupReport, "com.example.a", json => json.WriteString("issues", big));
        }

        File.AppendAllText(LogPath, "{\"seq\":3," + big);
        using var log = new AuditLog(_directory);
        Assert.Equal(200_009, log.RecoveredAtOpen!.BytesDropped);
        Assert.Equal(3, log.Append(AuditEvents.DaemonStop, "").Seq);
        Assert.Equal(new AuditVerification(true, 3, null, null, null), Verify());
        var last = File.ReadLines(LogPath).Last();
        Assert.Equal(3, JsonDocument.Parse(last).RootElement.GetProperty("seq").GetInt64());
    }

    public void Dispose() => Directory.Delete(_directory, recursive: true);
}
