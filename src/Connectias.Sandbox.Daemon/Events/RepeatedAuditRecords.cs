using System.Globalization;
using System.Text.Json;
using Connectias.Sandbox.Daemon.Hosting;

namespace Connectias.Sandbox.Daemon.Events;

/// <summary>
/// Audit records a plugin can repeat as fast as it likes (a network request refused by the same rule, thousands of
/// times): the first of a kind is written as ever, the identical ones in the <c>AuditRepeatWindowMs</c> after it are
/// only counted, and when the window closes (or the plugin is unloaded, or the daemon stops) one record stands for
/// all of them: the last one's details with <c>count</c>, <c>first_ts</c>, <c>last_ts</c> and <c>window_ms</c>. The
/// count is exact; nothing is dropped without it. "Identical" is the same plugin, event and kind: a kind is a
/// fixed set of the caller's (a broker rule), never something the plugin chooses, so a plugin cannot open windows
/// without end.
/// </summary>
internal sealed class RepeatedAuditRecords(AuditTrail audit, DaemonOptions options, BackgroundTasks tasks, ILogger<RepeatedAuditRecords> logger)
{
    private readonly Lock _lock = new();
    private readonly Dictionary<(string PluginId, string Event, string Kind), Window> _open = [];

    /// <summary>The records a window stood in for; the first was written on its own.</summary>
    private sealed class Window
    {
        public long Repeats;
        public DateTime First, Last;
        public Action<Utf8JsonWriter>? LastDetails;

        /// <summary>Set when the window was closed early (at unload), so its task need not wait for its end.</summary>
        public readonly TaskCompletionSource Closed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    /// <summary>Writes the record, or counts it when one of the same plugin, event and kind was written within the window; true when written now.</summary>
    public bool Record(string auditEvent, string pluginId, string kind, Action<Utf8JsonWriter> details)
    {
        if (options.AuditRepeatWindowMs == 0)
        {
            audit.Record(auditEvent, pluginId, details);
            return true;
        }

        var key = (pluginId, auditEvent, kind);
        Window window;
        // Under the lock, the first record too: a repeat counted before its first record was written could
        // otherwise be summarised before it.
        lock (_lock)
        {
            if (_open.TryGetValue(key, out var open))
            {
                var now = DateTime.UtcNow;
                if (open.Repeats++ == 0) open.First = now;
                open.Last = now;
                open.LastDetails = details;
                return false;
            }

            _open[key] = window = new Window();
            audit.Record(auditEvent, pluginId, details);
        }

        tasks.Run($"audit repeat window of {pluginId}", async () =>
        {
            // Shutdown ends the wait too (a cancelled delay completes WhenAny): the summary is written before DAEMON_STOP.
            await Task.WhenAny(Task.Delay(options.AuditRepeatWindow, tasks.Stopping), window.Closed.Task);
            Close(key, window);
        });
        return true;
    }

    /// <summary>At unload: the plugin's open windows close now, each with its summary.</summary>
    public void CloseAll(string pluginId)
    {
        List<KeyValuePair<(string PluginId, string Event, string Kind), Window>> windows;
        lock (_lock) windows = _open.Where(open => open.Key.PluginId == pluginId).ToList();
        foreach (var (key, window) in windows) Close(key, window);
    }

    private void Close((string PluginId, string Event, string Kind) key, Window window)
    {
        lock (_lock)
        {
            if (!_open.TryGetValue(key, out var open) || open != window) return; // closed already (at unload, say)
            _open.Remove(key);
            window.Closed.TrySetResult();
            if (window.Repeats == 0) return;
            logger.LogWarning("{Event} ({Kind}) of {PluginId} repeated {Count} more time(s) between {First} and {Last}; audited as one record",
                key.Event, key.Kind, key.PluginId, window.Repeats, Timestamp(window.First), Timestamp(window.Last));
            audit.Record(key.Event, key.PluginId, json =>
            {
                window.LastDetails!(json);
                json.WriteNumber("count", window.Repeats);
                json.WriteString("first_ts", Timestamp(window.First));
                json.WriteString("last_ts", Timestamp(window.Last));
                json.WriteNumber("window_ms", options.AuditRepeatWindowMs);
            });
        }
    }

    private static string Timestamp(DateTime time) => time.ToString("yyyy-MM-dd'T'HH:mm:ss.ffffff'Z'", CultureInfo.InvariantCulture);
}
