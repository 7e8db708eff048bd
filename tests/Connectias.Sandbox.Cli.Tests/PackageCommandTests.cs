using System.Diagnostics;
using System.IO.Compression;
using Connectias.Sandbox.Packaging;

namespace Connectias.Sandbox.Cli.Tests;

/// <summary>The offline commands, run as a user would: real files in a scratch directory.</summary>
public sealed class PackageCommandTests : CliScratch
{
    // A real plugin module: pack checks the module as the daemon would.
    private static readonly byte[] Module = Connectias.Sandbox.TestSupport.SamplePlugins.Wasm("noop");

    public PackageCommandTests()
    {
        Directory.CreateDirectory(Path("plugin/assets"));
        Directory.CreateDirectory(Path("trust"));
        File.WriteAllText(Path("plugin/plugin.json"), """{"id":"com.example.hello","name":"Hello","version":"1.0.0","commands":[{"name":"greet"}]}""");
        File.WriteAllBytes(Path("plugin/plugin.wasm"), Module);
        File.WriteAllText(Path("plugin/assets/greeting.txt"), "hello");
    }

    private string KeygenAndTrust(string prefix = "dev", string algorithm = "ec")
    {
        var result = Run("keygen", "-o", prefix, "--algorithm", algorithm);
        Assert.Equal(0, result.ExitCode);
        File.Copy(Path(prefix + ".pub"), Path($"trust/{prefix}.pub"));
        return result.Output.Split('\n').Single(line => line.StartsWith("fingerprint:", StringComparison.Ordinal))["fingerprint:".Length..].Trim();
    }

    [Theory]
    [InlineData("ec")]
    [InlineData("rsa")]
    public void Keygen_pack_sign_verify_round_trip(string algorithm)
    {
        var fingerprint = KeygenAndTrust("dev", algorithm);
        Assert.Equal(0, Run("pack", "plugin", "-o", "hello.zip").ExitCode);
        var signed = Run("sign", "hello.zip", "--key", "dev.key");
        Assert.Equal(0, signed.ExitCode);
        Assert.Contains(algorithm == "ec" ? "SIGNATURE.EC" : "SIGNATURE.RSA", signed.Output);

        var verified = Run("verify", "hello.zip", "--trust", "trust");
        Assert.Equal(0, verified.ExitCode);
        Assert.Contains($"signer: {fingerprint}", verified.Output);
        Assert.Equal("", verified.Error);
    }

    [Fact]
    public void Keygen_writes_a_private_key_only_its_owner_can_read_and_never_overwrites()
    {
        KeygenAndTrust();
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path("dev.key")));
        Assert.Contains("-----BEGIN PRIVATE KEY-----", File.ReadAllText(Path("dev.key")));
        Assert.Contains("-----BEGIN PUBLIC KEY-----", File.ReadAllText(Path("dev.pub")));
        var again = Run("keygen", "-o", "dev");
        Assert.Equal(3, again.ExitCode);
        Assert.Contains("refusing to overwrite", again.Error);
    }

    [Fact]
    public void Pack_defaults_the_file_name_and_is_reproducible()
    {
        Assert.Equal(0, Run("pack", "plugin").ExitCode);
        var first = File.ReadAllBytes(Path("com.example.hello-1.0.0.zip"));
        Assert.Equal(0, Run("pack", "plugin", "--force").ExitCode);
        Assert.Equal(first, File.ReadAllBytes(Path("com.example.hello-1.0.0.zip")));
        Assert.Equal(3, Run("pack", "plugin").ExitCode); // exists, no --force
    }

    [Fact]
    public void Pack_refuses_an_invalid_manifest_with_the_spec_reason()
    {
        File.WriteAllText(Path("plugin/plugin.json"), """{"id":"Hello","name":"Hello","version":"1.0.0"}""");
        var result = Run("pack", "plugin", "-o", "bad.zip");
        Assert.Equal(1, result.ExitCode);
        Assert.StartsWith("CORRUPTED_DATA: plugin.json: field 'id'", result.Error);
        Assert.False(File.Exists(Path("bad.zip")));
    }

    [Fact]
    public void Pack_refuses_symbolic_links()
    {
        File.CreateSymbolicLink(Path("plugin/passwd"), "/etc/passwd");
        var result = Run("pack", "plugin", "-o", "bad.zip");
        Assert.Equal(3, result.ExitCode);
        Assert.Contains("symbolic link", result.Error);
    }

    [Fact]
    public void Verify_reports_a_tampered_package_as_INVALID_SIGNATURE()
    {
        KeygenAndTrust();
        Run("pack", "plugin", "-o", "hello.zip");
        Run("sign", "hello.zip", "--key", "dev.key");
        using (var archive = ZipFile.Open(Path("hello.zip"), ZipArchiveMode.Update))
        {
            archive.GetEntry("assets/greeting.txt")!.Delete();
            using var writer = new StreamWriter(archive.CreateEntry("assets/greeting.txt").Open());
            writer.Write("HELLO");
        }

        var result = Run("verify", "hello.zip", "--trust", "trust");
        Assert.Equal(1, result.ExitCode);
        Assert.StartsWith("INVALID_SIGNATURE:", result.Error);
        Assert.Equal("", result.Output);
    }

    [Fact]
    public void Verify_refuses_an_unsigned_package()
    {
        Run("pack", "plugin", "-o", "hello.zip");
        var result = Run("verify", "hello.zip", "--trust", "trust");
        Assert.Equal(1, result.ExitCode);
        Assert.Contains("INVALID_SIGNATURE: package com.example.hello is not signed", result.Error);
    }

    [Fact]
    public void Verify_reports_an_incompatible_plugin_as_UNSUPPORTED_VERSION()
    {
        KeygenAndTrust();
        File.WriteAllText(Path("plugin/plugin.json"), """{"id":"com.example.hello","name":"Hello","version":"1.0.0","abi_version":7}""");
        Run("pack", "plugin", "-o", "hello.zip");
        Run("sign", "hello.zip", "--key", "dev.key");
        var result = Run("verify", "hello.zip", "--trust", "trust");
        Assert.Equal(1, result.ExitCode);
        Assert.StartsWith("UNSUPPORTED_VERSION:", result.Error);
    }

    [Fact]
    public void Verify_of_a_corrupt_file_is_CORRUPTED_DATA()
    {
        File.WriteAllText(Path("junk.zip"), "this is not a zip");
        var result = Run("verify", "junk.zip", "--trust", "trust");
        Assert.Equal(1, result.ExitCode);
        Assert.StartsWith("CORRUPTED_DATA:", result.Error);
    }

    [Fact]
    public void Sign_accepts_a_key_made_by_openssl()
    {
        var start = new ProcessStartInfo("openssl", ["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", Path("ossl.key")]) { RedirectStandardError = true };
        using (var process = Process.Start(start)!) process.WaitForExit();
        using var key = SigningKey.FromPem(File.ReadAllText(Path("ossl.key")));
        File.WriteAllText(Path("trust/ossl.pub"), key.ExportPublicKeyPem());

        Run("pack", "plugin", "-o", "hello.zip");
        Assert.Equal(0, Run("sign", "hello.zip", "--key", "ossl.key").ExitCode);
        Assert.Contains(key.Fingerprint, Run("verify", "hello.zip", "--trust", "trust").Output);
    }

    [Fact]
    public void Inspect_shows_manifest_entries_signatures_and_signer()
    {
        var fingerprint = KeygenAndTrust();
        Run("pack", "plugin", "-o", "hello.zip");
        Run("sign", "hello.zip", "--key", "dev.key");
        var result = Run("inspect", "hello.zip", "--trust", "trust", "--signed-bytes", "signed.bin");
        Assert.Equal(0, result.ExitCode);
        Assert.Contains("id:          com.example.hello", result.Output);
        Assert.Contains("commands:    greet", result.Output);
        Assert.Contains("assets/greeting.txt", result.Output);
        Assert.Contains("signature:   META-INF/SIGNATURE.EC (EC)", result.Output);
        Assert.Contains($"signer:      {fingerprint} (trusted)", result.Output);
        // The signed bytes, exactly as SPEC §1 defines them.
        var expected = System.Text.Encoding.Latin1.GetBytes("assets/greeting.txt|5|hello" + "plugin.json|" + File.ReadAllBytes(Path("plugin/plugin.json")).Length + "|" +
                                                             File.ReadAllText(Path("plugin/plugin.json")) + $"plugin.wasm|{Module.Length}|").Concat(Module);
        Assert.Equal(expected, File.ReadAllBytes(Path("signed.bin")));
    }

    [Fact]
    public void A_wrong_command_line_exits_2()
    {
        var result = Run("verify", "hello.zip");
        Assert.Equal(2, result.ExitCode);
        Assert.Contains("--trust", result.Error);
        Assert.Equal(2, Run("no-such-command").ExitCode);
    }

    [Fact]
    public void The_real_executable_prints_help_and_uses_its_exit_codes()
    {
        var dll = typeof(CliApp).Assembly.Location;
        var help = DotnetProgram.Run(dll, ["--help"]);
        Assert.Equal(0, help.ExitCode);
        foreach (var command in new[] { "keygen", "pack", "sign", "verify", "inspect" }) Assert.Contains(command, help.Output);

        File.WriteAllText(Path("junk.zip"), "junk");
        var refused = DotnetProgram.Run(dll, ["verify", Path("junk.zip"), "--trust", Path("trust")]);
        Assert.Equal(1, refused.ExitCode);
        Assert.StartsWith("CORRUPTED_DATA:", refused.Error);
    }
}
