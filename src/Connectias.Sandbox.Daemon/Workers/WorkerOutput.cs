using System.Text.Json;
using Connectias.Sandbox.Daemon.Hosting;

namespace Connectias.Sandbox.Daemon.Workers;

/// <summary>
/// A worker's two output streams after its handshake: stderr carries its JSON log lines (its own and the
/// plugin's), re-logged under the plugin's category <c>Connectias.Sandbox.Plugin.ID</c> within the daemon's
/// backstop budget (<see cref="WorkerLogRateLimit"/>); stdout must stay silent, and any line there breaks the
/// worker protocol.
/// </summary>
internal sealed class WorkerOutput(ILoggerFactory loggers, BackgroundTasks tasks, DaemonOptions options)
{
    public const string PluginCategoryPrefix = "Connectias.Sandbox.Plugin.";

    /// <summary>The longest log line kept from a worker; the rest of a longer one is dropped and counted.</summary>
    public const int MaxLineChars = 16 * 1024;

    /// <summary>Follows both streams until the worker ends; <paramref name="onProtocolBreak"/> runs once if stdout speaks.</summary>
    public void Follow(string pluginId, WorkerHandle worker, Func<Task> onProtocolBreak)
    {
        var logger = loggers.CreateLogger(PluginCategoryPrefix + pluginId);
        var process = worker.Process;
        var stderr = new BoundedLineReader(process.StandardError, MaxLineChars);
        var stdout = process.StandardOutput;
        var limit = new WorkerLogRateLimit(options.WorkerLogLinesPerMinute, options.WorkerLogCharsPerMinute, TimeProvider.System);
        tasks.Run($"log of {pluginId}'s worker {worker.Pid}", async () =>
        {
            try
            {
                while (await stderr.ReadLineAsync() is var (line, dropped))
                {
                    if (IsAllocationFailure(line)) worker.RanOutOfMemory = true;
                    // While the budget drops everything, a line is counted by its length, not parsed.
                    (LogLevel Level, string Source, string Message)? entry = limit.IsDropping ? null : Parse(line, dropped);
                    var admitted = limit.Admit(entry?.Message.Length ?? line.Length + dropped, out var summary);
                    if (summary is not null) LogSummary(logger, pluginId, worker.Pid, summary);
                    if (admitted && entry is { } e) logger.Log(e.Level, "[{PluginId}] {Source}: {Message}", pluginId, e.Source, e.Message);
                }
            }
            catch (ObjectDisposedException)
            {
                // the worker was stopped and its streams closed
            }
            finally
            {
                if (limit.Finish() is { } summary) LogSummary(logger, pluginId, worker.Pid, summary);
                worker.ErrorStreamEnded.TrySetResult();
            }
        });
        tasks.Run($"stdout of {pluginId}'s worker {worker.Pid}", async () =>
        {
            var buffer = new char[1];
            int read;
            try
            {
                read = await stdout.ReadAsync(buffer.AsMemory());
            }
            catch (ObjectDisposedException)
            {
                return; // the worker was stopped and its streams closed
            }

            if (read > 0) await onProtocolBreak();
        });
    }

    /// <summary>
    /// What Rust's allocator prints before it aborts the process ("memory allocation of N bytes failed"), raw, not a
    /// JSON line: only the worker's native code writes such a line, never a plugin, whose output is JSON-quoted.
    /// </summary>
    private static bool IsAllocationFailure(string line) =>
        line.StartsWith("memory allocation of ", StringComparison.Ordinal) && line.EndsWith(" bytes failed", StringComparison.Ordinal);

    private static void LogSummary(ILogger logger, string pluginId, int pid, string summary) =>
        logger.LogWarning("[{PluginId}] daemon: worker {Pid}: {Summary}", pluginId, pid, summary);

    /// <summary>One line of a worker's stderr as the daemon logs it: a JSON line's level, source and message, or the line itself.</summary>
    private static (LogLevel Level, string Source, string Message) Parse(string line, long dropped)
    {
        if (dropped > 0) return (LogLevel.Warning, "worker", $"a log line of {line.Length + dropped} characters, cut: {line[..Math.Min(line.Length, 200)]}...");
        try
        {
            using var document = JsonDocument.Parse(line);
            var root = document.RootElement;
            var level = root.TryGetProperty("level", out var l) ? l.GetString() : "info";
            var source = root.TryGetProperty("source", out var s) ? s.GetString() : "worker";
            var message = root.TryGetProperty("message", out var m) ? m.GetString() : line;
            return (level switch
            {
                "trace" => LogLevel.Trace,
                "debug" => LogLevel.Debug,
                "warning" => LogLevel.Warning,
                "error" => LogLevel.Error,
                _ => LogLevel.Information,
            }, source ?? "worker", message ?? line);
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException)
        {
            return (LogLevel.Information, "worker", line);
        }
    }
}
