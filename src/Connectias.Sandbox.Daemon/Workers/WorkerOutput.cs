using System.Text.Json;
using Connectias.Sandbox.Daemon.Hosting;

namespace Connectias.Sandbox.Daemon.Workers;

/// <summary>
/// A worker's two output streams after its handshake: stderr carries its JSON log lines (its own and the
/// plugin's), re-logged under the plugin's category <c>Connectias.Sandbox.Plugin.ID</c>; stdout must stay
/// silent, and any line there breaks the worker protocol.
/// </summary>
internal sealed class WorkerOutput(ILoggerFactory loggers, BackgroundTasks tasks)
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
        tasks.Run($"log of {pluginId}'s worker {worker.Pid}", async () =>
        {
            try
            {
                while (await stderr.ReadLineAsync() is var (line, dropped))
                {
                    if (dropped == 0) Relay(logger, pluginId, line);
                    else logger.LogWarning("[{PluginId}] worker: a log line of {Length} characters, cut: {Start}...", pluginId, line.Length + dropped, line[..Math.Min(line.Length, 200)]);
                }
            }
            catch (ObjectDisposedException)
            {
                // the worker was stopped and its streams closed
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

    private static void Relay(ILogger logger, string pluginId, string line)
    {
        try
        {
            using var document = JsonDocument.Parse(line);
            var root = document.RootElement;
            var level = root.TryGetProperty("level", out var l) ? l.GetString() : "info";
            var source = root.TryGetProperty("source", out var s) ? s.GetString() : "worker";
            var message = root.TryGetProperty("message", out var m) ? m.GetString() : line;
            logger.Log(level switch
            {
                "trace" => LogLevel.Trace,
                "debug" => LogLevel.Debug,
                "warning" => LogLevel.Warning,
                "error" => LogLevel.Error,
                _ => LogLevel.Information,
            }, "[{PluginId}] {Source}: {Message}", pluginId, source, message);
        }
        catch (JsonException)
        {
            logger.LogInformation("[{PluginId}] worker: {Line}", pluginId, line);
        }
    }
}
