using System.Text.Json;
using Connectias.Sandbox.Runtime;

namespace Connectias.Sandbox.Worker;

/// <summary>
/// The worker's log: one JSON object per line on stderr, which the supervisor reads and re-logs with
/// the plugin's id. Stdout is reserved for the handshake line.
/// </summary>
internal sealed class WorkerLog(TextWriter stderr) : IPluginLog
{
    private readonly Lock _lock = new();
    public string PluginId { get; set; } = "";

    public void Write(PluginLogLevel level, PluginLogSource source, string message) =>
        Emit(level.ToString().ToLowerInvariant(), source switch
        {
            PluginLogSource.Stdout => "plugin-stdout",
            PluginLogSource.Stderr => "plugin-stderr",
            PluginLogSource.LogBudget => "log-budget",
            _ => "plugin",
        }, message);

    public void Worker(string level, string message) => Emit(level, "worker", message);

    private void Emit(string level, string source, string message)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteString("ts", DateTime.UtcNow.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", System.Globalization.CultureInfo.InvariantCulture));
            json.WriteString("level", level);
            json.WriteString("source", source);
            if (PluginId.Length > 0) json.WriteString("plugin_id", PluginId);
            json.WriteString("message", message);
            json.WriteEndObject();
        }

        var line = System.Text.Encoding.UTF8.GetString(buffer.ToArray());
        lock (_lock)
        {
            stderr.WriteLine(line);
            stderr.Flush();
        }
    }
}
