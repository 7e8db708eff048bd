namespace Connectias.Sandbox.Runtime;

/// <summary>
/// The module checks that need no policy, for tools that build packages (<c>connectias pack</c>): the module
/// validates, exports what ABI v1 requires with the right signatures, imports only ABI functions covered by
/// the permissions its manifest asks for, and declares no more initial memory than the manifest requests.
/// A daemon may still refuse what its policy does not grant; it never refuses a module that fails here.
/// </summary>
public static class PackageModuleCheck
{
    public static void Check(string pluginId, ReadOnlyMemory<byte> module, IEnumerable<Permission> requestedPermissions, ResourceLimits requestedLimits)
    {
        var setup = new PluginSetup
        {
            PluginId = pluginId,
            Module = module,
            Permissions = requestedPermissions.ToHashSet(),
            Limits = requestedLimits,
        };
        using var engine = new WasmEngine();
        using var compiled = engine.Compile(setup.PluginId, setup.Module.Span);
        ModuleChecker.Check(compiled.Module, setup, hosting: false);
    }
}
