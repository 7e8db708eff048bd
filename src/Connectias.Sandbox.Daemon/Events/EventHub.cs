using System.Threading.Channels;
using Connectias.Sandbox.V1;
using Google.Protobuf.WellKnownTypes;

namespace Connectias.Sandbox.Daemon.Events;

/// <summary>
/// Fans events out to WatchEvents streams. Each watcher has a bounded buffer; a watcher too slow to
/// keep up loses its oldest events, which it can see as a gap in <c>seq</c>, and never slows the daemon.
/// </summary>
internal sealed class EventHub
{
    private const int BufferPerWatcher = 1024;
    private readonly Lock _lock = new();
    private readonly List<(string Filter, Channel<Event> Channel)> _watchers = [];
    private long _seq;

    public void Publish(string pluginId, Action<Event> fill)
    {
        var item = new Event { Seq = (ulong)Interlocked.Increment(ref _seq), Time = Timestamp.FromDateTime(DateTime.UtcNow), PluginId = pluginId };
        fill(item);
        lock (_lock)
        {
            foreach (var (filter, channel) in _watchers)
                if (filter.Length == 0 || filter == pluginId) channel.Writer.TryWrite(item);
        }
    }

    public ChannelReader<Event> Subscribe(string filter, CancellationToken until)
    {
        var channel = Channel.CreateBounded<Event>(new BoundedChannelOptions(BufferPerWatcher) { FullMode = BoundedChannelFullMode.DropOldest, SingleReader = true });
        var entry = (filter, channel);
        lock (_lock) _watchers.Add(entry);
        until.Register(() =>
        {
            lock (_lock) _watchers.Remove(entry);
            channel.Writer.TryComplete();
        });
        return channel.Reader;
    }
}
