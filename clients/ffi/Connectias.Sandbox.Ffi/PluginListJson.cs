using System.Buffers;
using System.Text.Json;
using Connectias.Sandbox.V1;

namespace Connectias.Sandbox.Ffi;

/// <summary>connectias_list_plugins' JSON (SPEC §7): an array of {plugin_id, name, version, state, pid}.</summary>
internal static class PluginListJson
{
    /// <summary>UTF-8 JSON written by hand with Utf8JsonWriter: no reflection, so NativeAOT needs no metadata.</summary>
    public static ReadOnlyMemory<byte> Write(IEnumerable<PluginInfo> plugins)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartArray();
            foreach (var plugin in plugins)
            {
                json.WriteStartObject();
                json.WriteString("plugin_id", plugin.PluginId);
                json.WriteString("name", plugin.Name);
                json.WriteString("version", plugin.Version);
                json.WriteString("state", StateName(plugin.State));
                json.WriteNumber("pid", plugin.Pid);
                json.WriteEndObject();
            }

            json.WriteEndArray();
        }

        return buffer.WrittenMemory;
    }

    /// <summary>The §4 state names, as the proto spells them.</summary>
    public static string StateName(PluginState state) => state switch
    {
        PluginState.Loading => "LOADING",
        PluginState.Ready => "READY",
        PluginState.Terminated => "TERMINATED",
        PluginState.Unloaded => "UNLOADED",
        PluginState.Crashed => "CRASHED",
        _ => "UNSPECIFIED",
    };
}
