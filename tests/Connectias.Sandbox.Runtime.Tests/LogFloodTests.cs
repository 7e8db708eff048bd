using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;

namespace Connectias.Sandbox.Runtime.Tests;

/// <summary>
/// The floods of issue 12 by a real plugin (samples/plugins/wat/log_flood.wat): each leaves the call's budget of lines
/// and one summary that counts the rest, the plugin stays usable, and a flood of writes ends at its deadline inside a
/// write. Also fd_write's refusals of bad arguments (bad_fd_write.wat), since the host defines fd_write itself.
/// </summary>
[Collection("engine")]
public sealed class LogFloodTests(EngineFixture fixture) : RuntimeTestBase(fixture)
{
    private static readonly ResourceLimits FloodFuel = ResourceLimits.Defaults with { FuelPerCall = 100_000_000 };
    private static readonly int LinesPerCall = PluginBudgets.Defaults.LogLinesPerCall;
    private const int WasiOutputChunk = WasiOutput.ChunkBytes;

    [Theory]
    [InlineData("newlines", 64 << 20, PluginLogSource.Stdout, "", 0)]
    [InlineData("log", 1_000_000, PluginLogSource.Log, "x", 1)]
    [InlineData("empty", 1_000_000, PluginLogSource.Log, "", 0)]
    public void A_flood_in_one_call_leaves_the_calls_budget_and_one_summary_that_counts_the_rest(string command, long written, PluginLogSource source, string line, int lineBytes)
    {
        var log = new RecordingLog();
        var plugin = Load("log_flood", FloodFuel, log: log);
        plugin.Execute(command, []);

        var lines = log.Lines;
        Assert.Equal(LinesPerCall + 1, lines.Count);
        Assert.All(lines.Take(LinesPerCall), l => Assert.Equal((source, line), (l.Source, l.Message)));
        var dropped = written - LinesPerCall;
        Assert.Equal((PluginLogLevel.Warning, PluginLogSource.LogBudget), (lines[^1].Level, lines[^1].Source));
        Assert.StartsWith(string.Create(CultureInfo.InvariantCulture, $"log budget of a call spent: {dropped} lines ({dropped * lineBytes} bytes) of this call dropped"), lines[^1].Message);

        plugin.Execute(command, []); // not a fault: the plugin goes on, with a fresh budget
        Assert.Equal(2 * (LinesPerCall + 1), log.Lines.Count);
        AssertRuntimeSound();
    }

    [Fact]
    public void A_flood_of_fd_writes_of_4_GiB_each_ends_with_TIMEOUT_inside_a_write_at_its_deadline()
    {
        var log = new RecordingLog();
        var plugin = Load("log_flood", FloodFuel with { FuelPerCall = 1_000_000_000_000, TimeoutMs = 300 }, log: log);
        var clock = Stopwatch.StartNew();
        var error = CallFails(plugin, "forever");
        clock.Stop();

        Assert.Equal(ErrorReason.Timeout, error.Reason);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(3), $"the call ended {clock.ElapsedMilliseconds} ms after it started, with a 300 ms deadline");
        // A count, not a time: the lines the host took (the budget's and the dropped ones, one per newline) are whole
        // pieces of 1 MiB, the unit between deadline checks, and not whole writes of 63 x 64 MiB, which a host that
        // checks only between host calls would finish (each takes a few hundred milliseconds just to count).
        var summary = Assert.Single(log.Lines, l => l.Source == PluginLogSource.LogBudget).Message;
        var taken = LinesPerCall + long.Parse(summary.Split(' ')[6], CultureInfo.InvariantCulture);
        Assert.Equal(0, taken % WasiOutputChunk);
        Assert.NotEqual(0, taken % (63L * (64 << 20)));
        Assert.Equal(ErrorReason.PluginCrashed, Assert.Throws<SandboxException>(() => plugin.Execute("log", [])).Reason);
        AssertRuntimeSound();
    }

    [Fact]
    public void A_plugin_unloaded_in_the_minute_it_flooded_gets_that_minutes_summary_at_its_cleanup()
    {
        var log = new RecordingLog();
        var plugin = Load("log_flood", FloodFuel, log: log, budgets: PluginBudgets.Defaults with { LogLinesPerMinute = 300 });
        plugin.Execute("empty", []); // 200 lines and the call's summary
        plugin.Execute("empty", []); // 99 lines: the minute is spent, the rest is the minute's to sum up
        Assert.Equal(300, log.Lines.Count);

        Assert.Equal((false, 0), plugin.Cleanup()); // log_flood exports no plugin_cleanup; the log is finished all the same
        Assert.StartsWith("log budget of a minute spent: 999901 lines (0 bytes) dropped", log.Lines[^1].Message);
        Assert.Equal(301, log.Lines.Count);
    }

    [Theory]
    [InlineData("fd", 8)]
    [InlineData("stdin", 8)]
    [InlineData("iovecs", 21)]
    [InlineData("buffer", 21)]
    [InlineData("written", 21)]
    [InlineData("count", 21)]
    public void An_fd_write_with_a_bad_argument_fails_with_its_errno_and_writes_nothing(string command, int errno)
    {
        var log = new RecordingLog();
        var plugin = Load("bad_fd_write", log: log);
        var error = CallFails(plugin, command);
        Assert.Equal(ErrorReason.PluginError, error.Reason);
        Assert.Equal(errno.ToString(CultureInfo.InvariantCulture), error.Metadata["plugin_code"]);
        Assert.Empty(log.Lines);
        Assert.Null(plugin.TerminatedBy);
    }

    [Fact]
    public void An_fd_write_to_stderr_gathers_its_iovecs_into_lines_and_reports_the_bytes_written()
    {
        var log = new RecordingLog();
        var plugin = Load("bad_fd_write", log: log);
        var output = plugin.Execute("ok", []).Output;
        Assert.Equal(3u, BinaryPrimitives.ReadUInt32LittleEndian(output));
        Assert.Equal([(PluginLogLevel.Warning, PluginLogSource.Stderr, "hi")], log.Lines);
    }
}
