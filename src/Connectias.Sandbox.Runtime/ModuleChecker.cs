using Wasmtime;

namespace Connectias.Sandbox.Runtime;

/// <summary>
/// The load-time checks of SPEC §1–§2 on a compiled module: exports and their signatures, imports
/// against the ABI and the granted permissions, and the declared memory against the limit. Every
/// refusal names the export or import at fault.
/// </summary>
internal static class ModuleChecker
{
    /// <param name="module">The compiled module.</param>
    /// <param name="setup">Its plugin's setup: the permissions and limits it is checked against.</param>
    /// <param name="hosting">True when the module is about to run here, so an import this host cannot serve
    /// (http_request without a broker) is refused too; false for a package check that runs nothing.</param>
    public static void Check(Module module, PluginSetup setup, bool hosting = true)
    {
        var metadata = new Dictionary<string, string> { ["plugin_id"] = setup.PluginId };
        CheckImports(module, setup, metadata, hosting);
        CheckExports(module, setup, metadata);
    }

    private static void CheckImports(Module module, PluginSetup setup, Dictionary<string, string> metadata, bool hosting)
    {
        foreach (var import in module.Imports)
        {
            var name = $"{import.ModuleName}.{import.Name}";
            if (import is not FunctionImport function)
                throw Corrupt($"module imports {KindOf(import)} '{name}'; plugins may import only functions (and must define and export their own memory)", metadata);

            if (import.ModuleName == AbiContract.WasiModule) continue; // checked against the WASI linker at instantiation
            if (import.ModuleName != AbiContract.ImportModule || !AbiContract.Imports.TryGetValue(import.Name, out var expected))
                throw Corrupt($"module imports '{name}', which is outside plugin ABI v1 (module 'connectias': {string.Join(", ", AbiContract.Imports.Keys)}; or WASI preview 1)", metadata);

            if (!expected.Signature.Matches(function.Parameters, function.Results))
                throw Corrupt($"import '{name}' is declared as {AbiSignature.Describe(function.Parameters, function.Results)}; ABI v1 defines it as {expected.Signature}", metadata);

            if (expected.Needs is { } permission && !setup.Permissions.Contains(permission))
            {
                throw new SandboxException(ErrorReason.PermissionDenied,
                    $"module imports '{name}', which needs the '{permission.WireName()}' permission; the policy does not grant it to {setup.PluginId}",
                    new Dictionary<string, string>(metadata) { ["permission"] = permission.WireName() });
            }

            if (hosting && expected.Needs == Permission.Network && setup.NetworkBroker is null)
            {
                throw new SandboxException(ErrorReason.PermissionDenied,
                    $"module imports '{name}', but this host has no network broker to perform requests; network access is unavailable",
                    new Dictionary<string, string>(metadata) { ["permission"] = Permission.Network.WireName() });
            }
        }
    }

    private static void CheckExports(Module module, PluginSetup setup, Dictionary<string, string> metadata)
    {
        var exports = module.Exports.ToDictionary(export => export.Name, StringComparer.Ordinal);
        if (!exports.TryGetValue(AbiContract.MemoryExport, out var memoryExport))
            throw Corrupt("module does not export 'memory'; ABI v1 requires the plugin's linear memory as export 'memory'", metadata);
        if (memoryExport is not MemoryExport memory)
            throw Corrupt($"export 'memory' is {KindOf(memoryExport)}, not a memory", metadata);
        if (memory.Is64Bit) throw Corrupt("export 'memory' is a 64-bit memory; ABI v1 uses a 32-bit memory", metadata);

        var initialBytes = memory.Minimum * Memory.PageSize;
        if (initialBytes > setup.Limits.MemoryBytes)
        {
            throw new SandboxException(ErrorReason.MemoryLimitExceeded,
                $"module declares an initial memory of {initialBytes} bytes ({memory.Minimum} pages); the limit is {setup.Limits.MemoryBytes} bytes",
                new Dictionary<string, string>(metadata)
                {
                    ["limit"] = setup.Limits.MemoryBytes.ToString(System.Globalization.CultureInfo.InvariantCulture),
                    ["used"] = initialBytes.ToString(System.Globalization.CultureInfo.InvariantCulture),
                });
        }

        foreach (var (name, signature, required) in AbiContract.FunctionExports)
        {
            if (!exports.TryGetValue(name, out var export))
            {
                if (required) throw Corrupt($"module does not export '{name}', which ABI v1 requires as {signature}", metadata);
                continue;
            }

            if (export is not FunctionExport function)
                throw Corrupt($"export '{name}' is {KindOf(export)}; ABI v1 requires a function {signature}", metadata);
            if (!signature.Matches(function.Parameters, function.Results))
                throw Corrupt($"export '{name}' has signature {AbiSignature.Describe(function.Parameters, function.Results)}; ABI v1 requires {signature}", metadata);
        }
    }

    private static string KindOf(object item) => item switch
    {
        FunctionImport or FunctionExport => "a function",
        MemoryImport or MemoryExport => "a memory",
        TableImport or TableExport => "a table",
        GlobalImport or GlobalExport => "a global",
        _ => "something else",
    };

    private static SandboxException Corrupt(string message, Dictionary<string, string> metadata) =>
        new(ErrorReason.CorruptedData, message, new Dictionary<string, string>(metadata));
}
