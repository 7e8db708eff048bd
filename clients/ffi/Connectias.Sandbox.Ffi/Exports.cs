using System.Runtime.InteropServices;
using System.Text.Unicode;

namespace Connectias.Sandbox.Ffi;

/// <summary>
/// The C functions of SPEC §7, exported by name from libconnectias_sandbox.so (see connectias_sandbox.h).
/// Each checks its pointers and strings first (-2, -1), then hands the work to <see cref="Bridge"/>; every
/// body runs inside a catch-all, because an exception leaving an UnmanagedCallersOnly method ends the
/// host's process.
/// </summary>
internal static unsafe class Exports
{
    /// <summary>Allocated once and never freed: connectias_version's string is static for the caller.</summary>
    private static readonly byte* Version = NativeText.AllocString(typeof(Exports).Assembly.GetName().Version?.ToString(3) ?? "0.0.0");

    [UnmanagedCallersOnly(EntryPoint = "connectias_init")]
    public static int Init()
    {
        try
        {
            Bridge.Init(null);
            return ReturnCode.Ok;
        }
        catch (Exception e)
        {
            return Failures.From(e, Operation.Connect);
        }
    }

    [UnmanagedCallersOnly(EntryPoint = "connectias_init_with_socket")]
    public static int InitWithSocket(byte* socketPath)
    {
        try
        {
            var code = NativeText.Read(socketPath, "socket_path", out var path);
            if (code != ReturnCode.Ok) return code;
            Bridge.Init(path);
            return ReturnCode.Ok;
        }
        catch (Exception e)
        {
            return Failures.From(e, Operation.Connect);
        }
    }

    [UnmanagedCallersOnly(EntryPoint = "connectias_version")]
    public static byte* GetVersion() => Version;

    [UnmanagedCallersOnly(EntryPoint = "connectias_load_plugin")]
    public static byte* LoadPlugin(byte* packagePath)
    {
        try
        {
            if (NativeText.Read(packagePath, "package_path", out var path) != ReturnCode.Ok) return null;
            return NativeText.AllocString(Bridge.Load(path));
        }
        catch (Exception e)
        {
            Failures.From(e, Operation.Load);
            return null;
        }
    }

    [UnmanagedCallersOnly(EntryPoint = "connectias_unload_plugin")]
    public static int UnloadPlugin(byte* pluginId)
    {
        try
        {
            var code = NativeText.Read(pluginId, "plugin_id", out var id);
            if (code != ReturnCode.Ok) return code;
            Bridge.Unload(id);
            return ReturnCode.Ok;
        }
        catch (Exception e)
        {
            return Failures.From(e, Operation.Call);
        }
    }

    [UnmanagedCallersOnly(EntryPoint = "connectias_execute_plugin")]
    public static int ExecutePlugin(byte* pluginId, byte* command, byte* argsJson, byte** outResult)
    {
        try
        {
            if (outResult == null) return Failures.Fail(ReturnCode.NullPointer, "CORRUPTED_DATA", "out_result is NULL");
            *outResult = null;
            var code = ReadCall(pluginId, command, out var id, out var name);
            if (code != ReturnCode.Ok) return code;
            code = NativeText.ReadBytes(argsJson, "args_json", out var args);
            if (code != ReturnCode.Ok) return code;

            var output = Bridge.Execute(id, name, args.ToArray()).Span;
            // A C string cannot carry invalid UTF-8 or a NUL inside; such output needs connectias_execute_plugin_bytes.
            if (!Utf8.IsValid(output) || output.Contains((byte)0))
            {
                return Failures.Fail(ReturnCode.InvalidUtf8, "CORRUPTED_DATA",
                    $"the output of plugin {id} ({output.Length} bytes) is not a UTF-8 string without NUL; call connectias_execute_plugin_bytes for binary output");
            }

            *outResult = NativeText.AllocString(output);
            return ReturnCode.Ok;
        }
        catch (Exception e)
        {
            return Failures.From(e, Operation.Call);
        }
    }

    [UnmanagedCallersOnly(EntryPoint = "connectias_execute_plugin_bytes")]
    public static int ExecutePluginBytes(byte* pluginId, byte* command, byte* args, nuint argsLength, byte** output, nuint* outputLength)
    {
        try
        {
            if (output == null) return Failures.Fail(ReturnCode.NullPointer, "CORRUPTED_DATA", "out is NULL");
            *output = null;
            if (outputLength == null) return Failures.Fail(ReturnCode.NullPointer, "CORRUPTED_DATA", "out_len is NULL");
            *outputLength = 0;
            var code = ReadCall(pluginId, command, out var id, out var name);
            if (code != ReturnCode.Ok) return code;
            // NULL with a length of 0 is the usual C spelling of "no arguments".
            if (args == null && argsLength != 0) return Failures.Fail(ReturnCode.NullPointer, "CORRUPTED_DATA", $"args is NULL but args_len is {argsLength}");
            if (argsLength > int.MaxValue) return Failures.Fail(ReturnCode.ExecutionFailed, "CORRUPTED_DATA", $"args_len {argsLength} is beyond what one call can carry");

            var result = Bridge.Execute(id, name, new ReadOnlySpan<byte>(args, (int)argsLength).ToArray()).Span;
            *output = NativeText.AllocBytes(result);
            *outputLength = (nuint)result.Length;
            return ReturnCode.Ok;
        }
        catch (Exception e)
        {
            return Failures.From(e, Operation.Call);
        }
    }

    [UnmanagedCallersOnly(EntryPoint = "connectias_free_bytes")]
    public static void FreeBytes(byte* bytes) => NativeText.Free(bytes);

    [UnmanagedCallersOnly(EntryPoint = "connectias_list_plugins")]
    public static byte* ListPlugins()
    {
        try
        {
            return NativeText.AllocString(PluginListJson.Write(Bridge.List()).Span);
        }
        catch (Exception e)
        {
            Failures.From(e, Operation.Call);
            return null;
        }
    }

    [UnmanagedCallersOnly(EntryPoint = "connectias_get_last_error")]
    public static byte* GetLastError()
    {
        try
        {
            return LastError.Take() is { } error ? NativeText.AllocString(error) : null;
        }
        catch (Exception)
        {
            return null; // out of memory for the copy: nothing better to report, and nothing may be thrown
        }
    }

    [UnmanagedCallersOnly(EntryPoint = "connectias_free_string")]
    public static void FreeString(byte* text) => NativeText.Free(text);

    [UnmanagedCallersOnly(EntryPoint = "connectias_shutdown")]
    public static void Shutdown()
    {
        try
        {
            Bridge.Shutdown();
        }
        catch (Exception e)
        {
            Failures.From(e, Operation.Call);
        }
    }

    private static int ReadCall(byte* pluginId, byte* command, out string id, out string name)
    {
        name = "";
        var code = NativeText.Read(pluginId, "plugin_id", out id);
        return code != ReturnCode.Ok ? code : NativeText.Read(command, "command", out name);
    }
}
