using Connectias.Sandbox.Daemon.Events;
using Connectias.Sandbox.V1;
using static Connectias.Sandbox.Daemon.UnitTests.ChannelReaders;

namespace Connectias.Sandbox.Daemon.UnitTests;

/// <summary>WatchEvents' fan-out: filters, ordering, a slow watcher that loses old events instead of slowing the daemon.</summary>
public class EventHubTests
{
    [Fact]
    public void A_watcher_sees_every_plugin_or_only_the_one_it_filters_on_in_order()
    {
        var hub = new EventHub();
        var all = hub.Subscribe("", CancellationToken.None);
        var one = hub.Subscribe("com.example.a", CancellationToken.None);
        hub.Publish("com.example.a", e => e.StateChanged = new StateChanged { Current = PluginState.Ready });
        hub.Publish("com.example.b", e => e.StateChanged = new StateChanged { Current = PluginState.Ready });
        hub.Publish("com.example.a", e => e.Violation = new Violation { Reason = "TIMEOUT" });

        var seen = Drain(all);
        Assert.Equal(["com.example.a", "com.example.b", "com.example.a"], seen.Select(e => e.PluginId));
        Assert.True(seen.Zip(seen.Skip(1)).All(pair => pair.Second.Seq > pair.First.Seq));
        var filtered = Drain(one);
        Assert.Equal(2, filtered.Count);
        Assert.All(filtered, e => Assert.Equal("com.example.a", e.PluginId));
        Assert.Equal("TIMEOUT", filtered[1].Violation.Reason);
    }

    [Fact]
    public void A_watcher_that_does_not_read_loses_its_oldest_events_and_sees_the_gap_in_seq()
    {
        var hub = new EventHub();
        var slow = hub.Subscribe("", CancellationToken.None);
        for (var i = 0; i < 1500; i++) hub.Publish("com.example.a", e => e.Violation = new Violation { Reason = "X" });
        var seen = Drain(slow);
        Assert.Equal(1024, seen.Count);
        Assert.Equal(1500ul, seen[^1].Seq);
        Assert.Equal(477ul, seen[0].Seq); // 1500 - 1024 + 1: the oldest were dropped
    }

    [Fact]
    public async Task A_cancelled_watch_ends_its_stream_and_receives_nothing_more()
    {
        var hub = new EventHub();
        using var stop = new CancellationTokenSource();
        var reader = hub.Subscribe("", stop.Token);
        await stop.CancelAsync();
        hub.Publish("com.example.a", e => e.Violation = new Violation());
        Assert.False(reader.TryRead(out _));
        await reader.Completion.WaitAsync(TimeSpan.FromSeconds(5));
    }
}
