using Connectias.Sandbox.Daemon.Workers;
using Connectias.Sandbox.TestSupport;

namespace Connectias.Sandbox.Daemon.UnitTests;

public class WorkerLogRateLimitTests
{
    private readonly ManualClock _clock = new();

    [Fact]
    public void Lines_over_the_budget_of_a_minute_are_dropped_and_summed_up_once_when_the_next_minute_opens()
    {
        var limit = new WorkerLogRateLimit(linesPerMinute: 3, charsPerMinute: 1000, _clock);
        Assert.Equal([true, true, true, false, false], Enumerable.Range(0, 5).Select(_ => Admit(limit, 10)));
        Assert.True(limit.IsDropping);

        _clock.Advance(TimeSpan.FromSeconds(59));
        Assert.False(limit.Admit(10, out var none));
        Assert.Null(none);

        _clock.Advance(TimeSpan.FromSeconds(1));
        Assert.False(limit.IsDropping); // the minute is over: the next line is parsed and admitted again
        Assert.True(limit.Admit(10, out var summary));
        Assert.Equal("log over the daemon's budget: 3 lines (30 characters) of this worker dropped in the minute from 2026-01-01T12:00:00Z; " +
                     "a worker may send 3 lines and 1000 characters a minute (Sandbox:WorkerLogLinesPerMinute, Sandbox:WorkerLogCharsPerMinute)", summary);
        Assert.Null(limit.Finish()); // the new minute dropped nothing
    }

    [Fact]
    public void A_line_over_the_characters_left_is_dropped_and_so_is_every_later_line_of_the_minute()
    {
        var limit = new WorkerLogRateLimit(linesPerMinute: 100, charsPerMinute: 100, _clock);
        Assert.True(Admit(limit, 60));
        Assert.False(Admit(limit, 50));
        Assert.False(Admit(limit, 1)); // would fit, but the log keeps a prefix
        Assert.StartsWith("log over the daemon's budget: 2 lines (51 characters)", limit.Finish());
    }

    [Fact]
    public void The_end_of_the_stream_sums_up_the_open_minute_and_a_minute_without_drops_says_nothing()
    {
        var quiet = new WorkerLogRateLimit(linesPerMinute: 10, charsPerMinute: 1000, _clock);
        for (var i = 0; i < 10; i++) Assert.True(Admit(quiet, 100));
        _clock.Advance(TimeSpan.FromMinutes(2));
        Assert.True(Admit(quiet, 100)); // a fresh minute, no summary of the full but not exceeded one
        Assert.Null(quiet.Finish());

        var flooded = new WorkerLogRateLimit(linesPerMinute: 10, charsPerMinute: 1000, _clock);
        for (var i = 0; i < 100_000; i++) Admit(flooded, 5);
        Assert.StartsWith("log over the daemon's budget: 99990 lines (499950 characters)", flooded.Finish());
        Assert.Null(flooded.Finish()); // once
    }

    private static bool Admit(WorkerLogRateLimit limit, long chars)
    {
        var admitted = limit.Admit(chars, out var summary);
        Assert.Null(summary);
        return admitted;
    }
}
