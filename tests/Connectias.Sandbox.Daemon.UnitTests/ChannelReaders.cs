using System.Threading.Channels;
using Connectias.Sandbox.V1;

namespace Connectias.Sandbox.Daemon.UnitTests;

internal static class ChannelReaders
{
    /// <summary>Every event already published to a watcher, without waiting for more.</summary>
    public static List<Event> Drain(ChannelReader<Event> reader)
    {
        var events = new List<Event>();
        while (reader.TryRead(out var item)) events.Add(item);
        return events;
    }
}
