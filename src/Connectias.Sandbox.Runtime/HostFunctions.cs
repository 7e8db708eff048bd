using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using Wasmtime;

namespace Connectias.Sandbox.Runtime;

/// <summary>
/// The <c>connectias.*</c> imports of ABI v1 (SPEC §2). Permissions were checked against the module's
/// imports at load; each function still checks its own inputs, since the plugin is never trusted.
/// </summary>
internal static class HostFunctions
{
    public static void Define(Linker linker, PluginInstance plugin)
    {
        const string module = AbiContract.ImportModule;

        linker.DefineFunction(module, "output", (Caller caller, int pointer, int length) =>
        {
            if ((uint)length > plugin.Limits.OutputBytes)
            {
                throw new SandboxException(ErrorReason.OutputTooLarge,
                    $"plugin {plugin.PluginId} produced {(uint)length} bytes of output; the limit is {plugin.Limits.OutputBytes}",
                    ErrorMetadata.For(plugin.PluginId, ("limit", plugin.Limits.OutputBytes.ToString(CultureInfo.InvariantCulture)), ("used", ((uint)length).ToString(CultureInfo.InvariantCulture))));
            }

            plugin.SetOutput(plugin.Guest(caller, pointer, length, "output").ToArray());
        });

        linker.DefineFunction(module, "error", (Caller caller, int pointer, int length) =>
            plugin.SetErrorMessage(plugin.Guest(caller, pointer, length, "error")));

        linker.DefineFunction(module, "log", (Caller caller, int level, int pointer, int length) =>
            plugin.LogWriter.Write((PluginLogLevel)Math.Clamp(level, 0, 4), plugin.Guest(caller, pointer, length, "log")));

        linker.DefineFunction(module, "storage_get", (Caller caller, int keyPointer, int keyLength) =>
        {
            var key = Key(plugin, caller, keyPointer, keyLength, "storage_get", out var problem);
            if (key is null) return problem;
            try
            {
                var value = plugin.Storage!.Get(key);
                plugin.CheckDeadline(); // a file of many megabytes takes its time; the deadline was checked before it too (Guest)
                return value is null ? AbiCodes.NotFound : ReturnBuffer(plugin, value);
            }
            catch (IOException)
            {
                return AbiCodes.IoFailure;
            }
        });

        linker.DefineFunction(module, "storage_set", (Caller caller, int keyPointer, int keyLength, int valuePointer, int valueLength) =>
        {
            var key = Key(plugin, caller, keyPointer, keyLength, "storage_set", out var problem);
            if (key is null) return (int)problem;
            var value = plugin.Guest(caller, valuePointer, valueLength, "storage_set").ToArray();
            try
            {
                var code = plugin.Storage!.Set(key, value);
                plugin.CheckDeadline(); // a write is flushed to disk, which may take long
                return code;
            }
            catch (IOException)
            {
                return AbiCodes.IoFailure;
            }
        });

        linker.DefineFunction(module, "storage_delete", (Caller caller, int keyPointer, int keyLength) =>
        {
            var key = Key(plugin, caller, keyPointer, keyLength, "storage_delete", out var problem);
            if (key is null) return (int)problem;
            try
            {
                var deleted = plugin.Storage!.Delete(key);
                plugin.CheckDeadline();
                return deleted ? 0 : AbiCodes.NotFound;
            }
            catch (IOException)
            {
                return AbiCodes.IoFailure;
            }
        });

        linker.DefineFunction(module, "system_info", () => ReturnBuffer(plugin, SystemInfoJson()));

        if (plugin.NetworkBroker is { } broker)
        {
            linker.DefineFunction(module, "http_request", (Caller caller, int pointer, int length) =>
            {
                plugin.CheckDeadline();
                var request = plugin.Guest(caller, pointer, length, "http_request").ToArray();
                var (code, response) = broker.Send(request, plugin.Remaining);
                if (code == AbiCodes.Timeout) plugin.NetworkTimedOut = true;
                plugin.CheckDeadline();
                return code < 0 ? code : ReturnBuffer(plugin, response);
            });
        }
    }

    /// <summary>Copies the key out of the plugin; null (with the ABI code) for an empty or oversized key.</summary>
    private static byte[]? Key(PluginInstance plugin, Caller caller, int pointer, int length, string function, out long problem)
    {
        problem = AbiCodes.BadRequest;
        if (length <= 0 || length > PluginStorage.MaxKeyBytes) return null;
        return plugin.Guest(caller, pointer, length, function).ToArray();
    }

    /// <summary>The i64 result of SPEC §2: <c>(len &lt;&lt; 32) | ptr</c> of a buffer the host filled.</summary>
    private static long ReturnBuffer(PluginInstance plugin, byte[] bytes)
    {
        if (bytes.Length == 0) return 0;
        var pointer = plugin.AllocateInGuest(bytes.Length);
        if (pointer == 0) return AbiCodes.AllocationFailed;
        plugin.WriteToGuest(pointer, bytes);
        return ((long)bytes.Length << 32) | (uint)pointer;
    }

    private static byte[] SystemInfoJson()
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteString("os", OperatingSystem.IsLinux() ? "linux" : RuntimeInformation.OSDescription);
            json.WriteString("arch", RuntimeInformation.OSArchitecture.ToString().ToLowerInvariant());
            json.WriteNumber("cpu_count", Environment.ProcessorCount);
            json.WriteString("core_version", CoreVersion.Current);
            json.WriteEndObject();
        }

        return buffer.ToArray();
    }
}
