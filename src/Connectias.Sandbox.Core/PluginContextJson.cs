using System.Text.Json;

namespace Connectias.Sandbox;

/// <summary>
/// Builds the ctx JSON handed to <c>plugin_init</c> (SPEC §2), without reflection. The one place it is
/// built: the daemon sends it to the worker, and the runtime builds the same when hosted without a daemon.
/// </summary>
public static class PluginContextJson
{
    public static byte[] Build(string pluginId, string version, IEnumerable<Permission> permissions, ResourceLimits limits,
        PluginConfig? config = null)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteString("plugin_id", pluginId);
            json.WriteString("version", version);
            json.WriteStartArray("permissions");
            foreach (var permission in permissions) json.WriteStringValue(permission.WireName());
            json.WriteEndArray();
            json.WriteStartObject("limits");
            foreach (var field in ResourceLimits.Fields.Where(f => f.InPluginContext)) json.WriteNumber(field.Name, field.Get(limits));
            json.WriteEndObject();
            json.WritePropertyName("config");
            (config ?? PluginConfig.Empty).WriteTo(json);

            json.WriteEndObject();
        }

        return buffer.ToArray();
    }
}
