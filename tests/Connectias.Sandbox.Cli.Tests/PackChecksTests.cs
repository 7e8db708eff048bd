using System.IO.Compression;
using System.Reflection;
using System.Runtime.Versioning;

namespace Connectias.Sandbox.Cli.Tests;

/// <summary>What a new user hit with the offline commands: pack's module checks, .connectiasignore, keygen's limits, client assemblies.</summary>
public sealed class PackChecksTests : CliScratch
{
    private void Plugin(string sample, string extraManifest = "")
    {
        Directory.CreateDirectory(Path("plugin"));
        File.WriteAllText(Path("plugin/plugin.json"), $$"""{"id":"com.example.checked","name":"Checked","version":"1.0.0"{{extraManifest}}}""");
        File.WriteAllBytes(Path("plugin/plugin.wasm"), SamplePlugins.Wasm(sample));
    }

    [Theory]
    [InlineData("missing_export", "", "CORRUPTED_DATA", "does not export")]
    [InlineData("wrong_signature", "", "CORRUPTED_DATA", "signature")]
    [InlineData("foreign_import", "", "CORRUPTED_DATA", "outside plugin ABI v1")]
    [InlineData("network_import", "", "PERMISSION_DENIED", "'network' permission")]
    [InlineData("huge_memory", "", "MEMORY_LIMIT_EXCEEDED", "initial memory")]
    public void Pack_refuses_a_module_the_daemon_would_refuse_whatever_its_policy(string sample, string extraManifest, string reason, string expected)
    {
        Plugin(sample, extraManifest);
        var result = Run("pack", "plugin", "-o", "out.zip");
        Assert.Equal(1, result.ExitCode);
        Assert.StartsWith($"{reason}: ", result.Error);
        Assert.Contains(expected, result.Error);
        Assert.False(File.Exists(Path("out.zip")));
    }

    [Fact]
    public void Pack_refuses_bytes_that_are_not_a_valid_module()
    {
        Plugin("noop");
        File.WriteAllBytes(Path("plugin/plugin.wasm"), [0x00, 0x61, 0x73, 0x6D, 0x01, 0x00, 0x00, 0x00, 0x05, 0xFF]);
        var result = Run("pack", "plugin", "-o", "out.zip");
        Assert.Equal(1, result.ExitCode);
        Assert.StartsWith("CORRUPTED_DATA: module does not validate", result.Error);
    }

    [Fact]
    public void Pack_accepts_an_import_the_manifest_asks_permission_for()
    {
        Plugin("network_import", ",\"permissions\":[\"network\"],\"allowed_hosts\":[\"api.example.com\"]");
        Assert.Equal(0, Run("pack", "plugin", "-o", "out.zip").ExitCode);
    }

    [Fact]
    public void Pack_leaves_out_what_connectiasignore_names()
    {
        Plugin("noop");
        Directory.CreateDirectory(Path("plugin/src"));
        Directory.CreateDirectory(Path("plugin/assets/cache"));
        File.WriteAllText(Path("plugin/src/main.c"), "int x;");
        File.WriteAllText(Path("plugin/notes.tmp"), "scratch");
        File.WriteAllText(Path("plugin/assets/cache/a.bin"), "cached");
        File.WriteAllText(Path("plugin/assets/logo.txt"), "logo");
        File.WriteAllText(Path("plugin/.connectiasignore"), "# build inputs and scratch\nsrc/\n*.tmp\nassets/cache/\n");
        Assert.Equal(0, Run("pack", "plugin", "-o", "out.zip").ExitCode);
        using var zip = ZipFile.OpenRead(Path("out.zip"));
        Assert.Equal(["assets/logo.txt", "plugin.json", "plugin.wasm"], zip.Entries.Select(e => e.FullName).Order(StringComparer.Ordinal));
    }

    [Theory]
    [InlineData("1024")]
    [InlineData("2047")]
    public void Keygen_with_too_few_bits_is_a_usage_error(string bits)
    {
        var result = Run("keygen", "--algorithm", "rsa", "--bits", bits, "-o", "weak");
        Assert.Equal(ExitCodes.Usage, result.ExitCode);
        Assert.Contains("--bits must be at least 2048", result.Error);
        Assert.False(File.Exists(Path("weak.key")));
    }

    [Theory]
    [InlineData(typeof(Client.SandboxClient))]
    [InlineData(typeof(V1.PluginInfo))]
    [InlineData(typeof(SandboxException))]
    public void The_assemblies_a_client_application_references_claim_no_platform(Type type) =>
        // SupportedOSPlatform on one of these would put CA1416 warnings into every consumer's build.
        Assert.Empty(type.Assembly.GetCustomAttributes<SupportedOSPlatformAttribute>());
}
