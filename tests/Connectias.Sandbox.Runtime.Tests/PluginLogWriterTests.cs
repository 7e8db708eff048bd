using System.Text;

namespace Connectias.Sandbox.Runtime.Tests;

public sealed class PluginLogWriterTests
{
    private static readonly PluginBudgets Small = new() { LogLinesPerCall = 5, LogBytesPerCall = 100, LogLinesPerMinute = 12, LogBytesPerMinute = 1000 };

    private readonly RecordingLog _log = new();
    private readonly ManualClock _clock = new();

    private PluginLogWriter Writer(PluginBudgets? budgets = null) => new(_log, budgets ?? Small, _clock);

    private List<string> PluginLines => _log.Lines.Where(l => l.Source != PluginLogSource.LogBudget).Select(l => l.Message).ToList();

    private List<string> Summaries => _log.Lines.Where(l => l.Source == PluginLogSource.LogBudget).Select(l => l.Message).ToList();

    [Fact]
    public void Lines_over_a_calls_budget_are_dropped_and_one_summary_at_the_end_of_the_call_counts_them()
    {
        var writer = Writer();
        for (var i = 0; i < 20; i++) writer.Write(PluginLogLevel.Info, Encoding.UTF8.GetBytes($"line {i:D2}")); // 7 bytes each
        Assert.Equal(["line 00", "line 01", "line 02", "line 03", "line 04"], PluginLines);
        Assert.Empty(Summaries); // not before the call ends

        writer.EndCall();
        var summary = Assert.Single(_log.Lines, l => l.Source == PluginLogSource.LogBudget);
        Assert.Equal(PluginLogLevel.Warning, summary.Level);
        Assert.StartsWith("log budget of a call spent: 15 lines (105 bytes) of this call dropped; a call may log 5 lines and 100 bytes", summary.Message);
        Assert.Contains("Sandbox:PluginLogLinesPerCall", summary.Message);

        writer.Write(PluginLogLevel.Info, "next call"u8); // a fresh call's budget
        writer.EndCall();
        Assert.Equal("next call", PluginLines[^1]);
        Assert.Single(Summaries);
    }

    [Fact]
    public void Empty_lines_count_as_lines_from_stdout_and_from_log_calls()
    {
        var writer = Writer();
        writer.WriteStream(PluginLogSource.Stdout, Encoding.ASCII.GetBytes(new string('\n', 1000)));
        for (var i = 0; i < 10; i++) writer.Write(PluginLogLevel.Info, []);
        writer.EndCall();
        Assert.Equal(5, PluginLines.Count);
        Assert.All(PluginLines, line => Assert.Equal("", line));
        Assert.StartsWith("log budget of a call spent: 1005 lines (0 bytes) of this call dropped", Assert.Single(Summaries));
    }

    [Fact]
    public void A_line_over_the_bytes_left_is_dropped_and_so_is_every_later_line_of_the_call()
    {
        var writer = Writer();
        var thirty = new string('a', 30);
        for (var i = 0; i < 4; i++) writer.Write(PluginLogLevel.Info, Encoding.ASCII.GetBytes(thirty)); // the 4th takes 120 > 100
        writer.Write(PluginLogLevel.Info, "x"u8); // would fit in the 10 bytes left, but the log keeps a prefix
        writer.EndCall();
        Assert.Equal([thirty, thirty, thirty], PluginLines);
        Assert.StartsWith("log budget of a call spent: 2 lines (31 bytes) of this call dropped", Assert.Single(Summaries));
    }

    [Fact]
    public void A_line_is_cut_at_8_KiB_and_charged_what_is_kept_while_its_dropped_bytes_are_all_it_wrote()
    {
        var budgets = new PluginBudgets { LogLinesPerCall = 10, LogBytesPerCall = 20 * 1024, LogLinesPerMinute = 100, LogBytesPerMinute = 1 << 20 };
        var writer = Writer(budgets);
        writer.Write(PluginLogLevel.Info, new byte[20_000]); // 8 KiB charged
        // One stdout line of 20,000 bytes in three writes: one line, cut; 16 KiB charged in all.
        writer.WriteStream(PluginLogSource.Stdout, Encoding.ASCII.GetBytes(new string('b', 7000)));
        writer.WriteStream(PluginLogSource.Stdout, Encoding.ASCII.GetBytes(new string('b', 7000)));
        writer.WriteStream(PluginLogSource.Stdout, Encoding.ASCII.GetBytes(new string('b', 6000) + "\n"));
        writer.WriteStream(PluginLogSource.Stdout, Encoding.ASCII.GetBytes(new string('c', 5000) + "\n")); // 21 KiB > 20 KiB: dropped
        writer.EndCall();
        Assert.Equal([8192, 8192], PluginLines.Select(l => l.Length));
        Assert.StartsWith("log budget of a call spent: 1 lines (5000 bytes) of this call dropped", Assert.Single(Summaries));
    }

    [Fact]
    public void Sixty_four_MiB_of_newlines_cost_the_budget_and_one_summary_with_the_exact_count()
    {
        var writer = Writer();
        var newlines = new byte[64 << 20];
        newlines.AsSpan().Fill((byte)'\n');
        for (var offset = 0; offset < newlines.Length; offset += 1 << 20) writer.WriteStream(PluginLogSource.Stdout, newlines.AsSpan(offset, 1 << 20));
        writer.WriteStream(PluginLogSource.Stdout, "tail without newline"u8);
        writer.EndCall();
        Assert.Equal(5, PluginLines.Count);
        Assert.StartsWith($"log budget of a call spent: {(64 << 20) - 5 + 1} lines (20 bytes) of this call dropped", Assert.Single(Summaries));
    }

    [Fact]
    public void Stdout_and_stderr_keep_their_own_unfinished_lines_and_the_end_of_a_call_emits_them()
    {
        var writer = Writer();
        writer.WriteStream(PluginLogSource.Stdout, "to std"u8);
        writer.WriteStream(PluginLogSource.Stderr, "to stderr\r\n"u8);
        writer.WriteStream(PluginLogSource.Stdout, "out"u8);
        writer.EndCall();
        Assert.Equal([(PluginLogLevel.Warning, PluginLogSource.Stderr, "to stderr"), (PluginLogLevel.Info, PluginLogSource.Stdout, "to stdout")], _log.Lines);
    }

    [Fact]
    public void The_minutes_budget_spans_calls_and_its_summary_comes_once_when_the_minute_is_over()
    {
        var writer = Writer();
        for (var call = 0; call < 4; call++)
        {
            for (var i = 0; i < 5; i++) writer.Write(PluginLogLevel.Info, Encoding.UTF8.GetBytes($"{call}.{i}")); // within each call's budget
            writer.EndCall();
            _clock.Advance(TimeSpan.FromSeconds(10));
        }

        Assert.Equal(12, PluginLines.Count); // calls 0 and 1 whole, two lines of call 2, nothing of call 3
        Assert.Equal("2.1", PluginLines[^1]);
        Assert.Empty(Summaries); // no call went over its own budget, and the minute is not over

        _clock.Advance(TimeSpan.FromSeconds(20)); // 60 s since the window opened
        writer.Write(PluginLogLevel.Info, "a new minute"u8);
        Assert.Equal("a new minute", PluginLines[^1]);
        var summary = Assert.Single(Summaries);
        Assert.StartsWith("log budget of a minute spent: 8 lines (24 bytes) dropped in the minute from 2026-01-01T12:00:00Z; a plugin may log 12 lines and 1000 bytes a minute", summary);
        Assert.Contains("Sandbox:PluginLogLinesPerMinute", summary);
        Assert.Equal(_log.Lines.Count - 2, _log.Lines.ToList().FindIndex(l => l.Source == PluginLogSource.LogBudget)); // before the new minute's line
    }

    [Fact]
    public void The_minutes_summary_also_comes_at_the_end_of_a_call_after_the_minute_and_only_once()
    {
        var writer = Writer();
        for (var i = 0; i < 20; i++)
        {
            writer.Write(PluginLogLevel.Info, "z"u8);
            if (i % 4 == 3) writer.EndCall();
        }

        _clock.Advance(TimeSpan.FromMinutes(1));
        writer.EndCall(); // a call that logged nothing
        writer.EndCall();
        _clock.Advance(TimeSpan.FromMinutes(5));
        writer.EndCall();
        Assert.Equal(12, PluginLines.Count);
        Assert.StartsWith("log budget of a minute spent: 8 lines (8 bytes) dropped", Assert.Single(Summaries));
    }

    [Fact]
    public void Finishing_sums_up_a_minute_not_yet_over_once_and_a_minute_without_drops_not_at_all()
    {
        var writer = Writer();
        for (var i = 0; i < 15; i++)
        {
            writer.Write(PluginLogLevel.Info, "z"u8);
            if (i % 5 == 4) writer.EndCall();
        }

        writer.Finish();
        writer.Finish();
        Assert.StartsWith("log budget of a minute spent: 3 lines (3 bytes) dropped in the minute from 2026-01-01T12:00:00Z", Assert.Single(Summaries));

        var quiet = new RecordingLog();
        var calm = new PluginLogWriter(quiet, Small, _clock);
        calm.Write(PluginLogLevel.Info, "one line"u8);
        calm.EndCall();
        calm.Finish();
        Assert.Single(quiet.Lines);
    }

    [Fact]
    public void A_calls_summary_takes_a_line_of_the_minutes_budget_and_when_it_does_not_fit_the_minutes_summary_counts_its_lines()
    {
        var budgets = new PluginBudgets { LogLinesPerCall = 5, LogBytesPerCall = 100, LogLinesPerMinute = 100, LogBytesPerMinute = 120 };
        var writer = Writer(budgets);
        for (var i = 0; i < 10; i++) writer.Write(PluginLogLevel.Info, "0123456789"u8);
        writer.EndCall(); // 50 bytes used: the summary of some 200 bytes does not fit in the 70 left
        Assert.Equal(5, PluginLines.Count);
        Assert.Empty(Summaries);

        _clock.Advance(TimeSpan.FromMinutes(1));
        writer.EndCall();
        Assert.StartsWith("log budget of a minute spent: 5 lines (50 bytes) dropped in the minute from 2026-01-01T12:00:00Z, 5 of them (50 bytes) over a call's budget", Assert.Single(Summaries));
    }

    [Fact]
    public void In_any_minute_a_flooding_plugin_gets_at_most_its_budget_and_one_summary_line()
    {
        var budgets = new PluginBudgets { LogLinesPerCall = 50, LogBytesPerCall = 10_000, LogLinesPerMinute = 120, LogBytesPerMinute = 100_000 };
        var writer = Writer(budgets);
        var perMinute = new List<int>();
        for (var minute = 0; minute < 3; minute++)
        {
            var before = _log.Lines.Count;
            for (var call = 0; call < 30; call++)
            {
                for (var i = 0; i < 100; i++) writer.Write(PluginLogLevel.Info, "flood"u8);
                writer.EndCall();
                _clock.Advance(TimeSpan.FromSeconds(2)); // 30 calls: one minute
            }

            perMinute.Add(_log.Lines.Count - before);
        }

        // Two calls' 50 lines and their summaries, then 18 lines of a third: 120. Each later minute adds the previous one's summary.
        Assert.Equal([120, 121, 121], perMinute);
    }
}
