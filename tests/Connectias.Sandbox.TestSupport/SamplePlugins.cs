using System.Text;
using Connectias.Sandbox.Packaging;

namespace Connectias.Sandbox.TestSupport;

/// <summary>
/// The sample plugins, built from samples/plugins by Plugins.targets into the plugins/ folder of the
/// output directory of every project that imports it.
/// </summary>
public static class SamplePlugins
{
    public static string Directory => Path.Combine(AppContext.BaseDirectory, "plugins");

    /// <summary>The module of the sample plugin <paramref name="name"/> (the file name without .wasm).</summary>
    public static byte[] Wasm(string name)
    {
        var path = Path.Combine(Directory, name + ".wasm");
        if (!File.Exists(path))
            throw new FileNotFoundException($"sample plugin {path} was not built: does the test project import samples/plugins/Plugins.targets?", path);
        return File.ReadAllBytes(path);
    }

    /// <summary>
    /// A package of the sample plugin <paramref name="name"/> under the manifest id <paramref name="id"/>,
    /// version 1.0.0; <paramref name="extraManifest"/> is spliced into the manifest object (it starts with
    /// a comma). Signed by <paramref name="signer"/>, or unsigned when it is null.
    /// </summary>
    public static byte[] Package(string name, string id, SigningKey? signer, string extraManifest = "", string version = "1.0.0") =>
        PackageModule(Wasm(name), name, id, signer, extraManifest, version);

    /// <summary>A package of <paramref name="module"/> (one a test made), as <see cref="Package"/> makes one of a sample's.</summary>
    public static byte[] PackageModule(byte[] module, string name, string id, SigningKey? signer, string extraManifest = "", string version = "1.0.0")
    {
        var manifest = $$"""{"id":"{{id}}","name":"{{name}}","version":"{{version}}"{{extraManifest}}}""";
        var bytes = PackageWriter.Write([
            new PackageEntry("plugin.json", Encoding.UTF8.GetBytes(manifest)),
            new PackageEntry("plugin.wasm", module),
        ]);
        return signer is null ? bytes : PackageSigner.Sign(bytes, signer);
    }
}
