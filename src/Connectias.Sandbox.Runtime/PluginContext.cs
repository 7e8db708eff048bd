using System.Text.Json;

namespace Connectias.Sandbox.Runtime;

/// <summary>Builds the ctx JSON handed to <c>plugin_init</c> (SPEC §2), without reflection.</summary>
public static class PluginContext
{
    public static byte[] Build(string pluginId, string version, IEnumerable<Permission> permissions, PluginLimits limits,
        Action<Utf8JsonWriter>? writeConfig = null)
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
            json.WriteNumber("memory_bytes", limits.MemoryBytes);
            json.WriteNumber("fuel_per_call", limits.FuelPerCall);
            json.WriteNumber("timeout_ms", limits.TimeoutMs);
            json.WriteNumber("storage_bytes", limits.StorageBytes);
            json.WriteNumber("output_bytes", limits.OutputBytes);
            json.WriteEndObject();
            json.WritePropertyName("config");
            if (writeConfig is null)
            {
                json.WriteStartObject();
                json.WriteEndObject();
            }
            else
            {
                writeConfig(json);
            }

            json.WriteEndObject();
        }

        return buffer.ToArray();
    }
}
