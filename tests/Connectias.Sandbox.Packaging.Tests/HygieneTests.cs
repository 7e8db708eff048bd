using System.IO.Compression;
using System.Text;
using static Connectias.Sandbox.Packaging.Tests.TestPackages;

namespace Connectias.Sandbox.Packaging.Tests;

/// <summary>One hostile package per hygiene rule of SPEC §1; each must be CORRUPTED_DATA naming the problem.</summary>
public class HygieneTests
{
    private static readonly byte[] Data = "x"u8.ToArray();

    [Fact]
    public void A_valid_package_reads_with_every_entry_and_the_module()
    {
        var package = new PackageReader().Read(Valid());
        Assert.Equal("com.example.hello", package.Manifest.Id);
        Assert.Equal(4, package.Entries.Count);
        Assert.Equal(EmptyModule, package.Module.ToArray());
        Assert.Empty(package.Signatures);
    }

    [Theory]
    [InlineData("../evil.txt", "'..' segment")]
    [InlineData("assets/../../evil.txt", "'..' segment")]
    [InlineData("..\\evil.txt", "'..' segment")]
    [InlineData("/etc/passwd", "absolute path")]
    [InlineData("\\windows\\evil.dll", "absolute path")]
    [InlineData("C:/evil.txt", "drive letter")]
    [InlineData("c:\\evil.txt", "drive letter")]
    [InlineData("assets//double.txt", "empty path segment")]
    [InlineData("assets/./dot.txt", "'.' segment")]
    [InlineData("bad\u0001name.txt", "control characters")]
    public void Dangerous_entry_names_are_refused(string name, string problem) =>
        AssertRefused(ValidWith(new RawEntry(name, Data)), ErrorReason.CorruptedData, problem);

    [Fact]
    public void A_duplicate_entry_name_is_refused() =>
        AssertRefused(ValidWith(new RawEntry("README.md", Data)), ErrorReason.CorruptedData, "duplicate");

    [Fact]
    public void Names_that_differ_only_in_case_are_duplicates() =>
        AssertRefused(ValidWith(new RawEntry("readme.MD", Data)), ErrorReason.CorruptedData, "duplicate of 'README.md'");

    [Fact]
    public void Names_that_collide_after_normalisation_are_duplicates() =>
        AssertRefused(ValidWith(new RawEntry("assets\\data.txt", Data)), ErrorReason.CorruptedData, "duplicate");

    [Theory]
    [InlineData(0xA1FF, "symbolic link")]
    [InlineData(0x21B6, "character device")]
    [InlineData(0x61B6, "block device")]
    [InlineData(0x11B6, "FIFO")]
    [InlineData(0xC1B6, "socket")]
    public void Special_file_entries_are_refused(int unixMode, string kind) =>
        AssertRefused(ValidWith(new RawEntry("link", "/etc/passwd"u8.ToArray(), unixMode)), ErrorReason.CorruptedData, kind);

    [Fact]
    public void An_encrypted_entry_is_refused() =>
        AssertRefused(MarkEncrypted(ValidWith(new RawEntry("secret.bin", Data)), "secret.bin"), ErrorReason.CorruptedData, "encrypted");

    [Fact]
    public void More_than_256_entries_are_refused_from_the_end_record()
    {
        var extra = Enumerable.Range(0, 253).Select(i => new RawEntry($"f/{i}.txt", Data)).ToArray();
        var error = Refusal(ValidWith(extra)); // 4 + 253 = 257
        Assert.Equal(ErrorReason.CorruptedData, error.Reason);
        Assert.Contains("257 entries; at most 256", error.Message);
        Assert.Equal("256", error.Metadata["limit"]);
    }

    [Fact]
    public void Exactly_256_entries_are_accepted()
    {
        var extra = Enumerable.Range(0, 252).Select(i => new RawEntry($"f/{i}.txt", Data)).ToArray();
        Assert.Equal(256, new PackageReader().Read(ValidWith(extra)).Entries.Count);
    }

    [Fact]
    public void A_package_larger_than_the_compressed_limit_is_refused()
    {
        var package = ValidWith(new RawEntry("big.bin", RandomBytes(64 * 1024), Level: CompressionLevel.NoCompression));
        AssertRefused(package, ErrorReason.CorruptedData, "compressed", new PackageLimits { MaxPackageBytes = 32 * 1024 });
    }

    [Fact]
    public void The_compressed_limit_defaults_to_64_MiB_and_is_checked_before_parsing()
    {
        // Not even a zip: the size alone decides, so nothing of it is parsed.
        var error = Refusal(new byte[64 * 1024 * 1024 + 1]);
        Assert.Contains("67108864 bytes compressed", error.Message);
    }

    [Fact]
    public void A_package_inflating_past_the_total_limit_is_refused()
    {
        var package = ValidWith(new RawEntry("a.bin", RandomBytes(40_000)), new RawEntry("b.bin", RandomBytes(40_000)));
        AssertRefused(package, ErrorReason.CorruptedData, "inflates to more than 65536", new PackageLimits { MaxTotalUncompressedBytes = 64 * 1024 });
    }

    [Fact]
    public void An_entry_compressed_more_than_200_to_1_beyond_1_MiB_is_refused() =>
        AssertRefused(ValidWith(new RawEntry("zeros.bin", new byte[2 * 1024 * 1024])), ErrorReason.CorruptedData, "compression ratio");

    [Fact]
    public void A_highly_compressible_entry_below_1_MiB_is_accepted() =>
        Assert.Equal(1024 * 1024, new PackageReader().Read(ValidWith(new RawEntry("zeros.bin", new byte[1024 * 1024]))).Entries[^1].Content.Length);

    [Fact]
    public void An_entry_that_inflates_past_its_declared_size_is_refused()
    {
        var package = DeclareSize(ValidWith(new RawEntry("liar.bin", RandomBytes(50_000))), "liar.bin", 1000);
        // .NET stops inflating at the declared size, so the lie costs only that much and the CRC exposes it.
        AssertRefused(package, ErrorReason.CorruptedData, "header lies about its size");
    }

    [Fact]
    public void An_entry_shorter_than_its_declared_size_is_refused()
    {
        var package = DeclareSize(ValidWith(new RawEntry("short.bin", RandomBytes(1000))), "short.bin", 5000);
        AssertRefused(package, ErrorReason.CorruptedData, "truncated");
    }

    [Fact]
    public void A_damaged_stored_entry_fails_its_crc()
    {
        var content = Encoding.ASCII.GetBytes("MARKER-" + new string('q', 100));
        var package = ValidWith(new RawEntry("stored.txt", content, Level: CompressionLevel.NoCompression));
        var at = IndexOf(package, "MARKER-"u8.ToArray());
        package[at] ^= 0xFF;
        AssertRefused(package, ErrorReason.CorruptedData, "CRC-32");
    }

    [Theory]
    [InlineData(0.0)]
    [InlineData(0.1)]
    [InlineData(0.5)]
    [InlineData(0.97)]
    public void Garbage_and_truncated_archives_are_refused(double keepFraction)
    {
        var valid = Valid();
        var truncated = valid.Take((int)(valid.Length * keepFraction)).ToArray();
        Assert.Equal(ErrorReason.CorruptedData, Refusal(truncated).Reason);
    }

    [Fact]
    public void Random_bytes_are_not_a_package() =>
        AssertRefused(RandomBytes(4096), ErrorReason.CorruptedData, "not a zip archive");

    [Fact]
    public void A_package_without_a_manifest_is_refused() =>
        AssertRefused(Zip(new RawEntry("plugin.wasm", EmptyModule)), ErrorReason.CorruptedData, "no plugin.json");

    [Fact]
    public void A_manifest_larger_than_64_KiB_is_refused_before_parsing()
    {
        var manifest = ManifestJson.TrimEnd('}') + ",\"description\":\"" + new string('a', 64 * 1024) + "\"}";
        AssertRefused(WithManifest(manifest), ErrorReason.CorruptedData, "at most 65536");
    }

    [Fact]
    public void A_package_without_its_module_is_refused() =>
        AssertRefused(Zip(new RawEntry("plugin.json", Encoding.UTF8.GetBytes(ManifestJson))), ErrorReason.CorruptedData, "no 'plugin.wasm'");

    [Fact]
    public void A_module_that_is_not_WebAssembly_is_refused() =>
        AssertRefused(Zip(new RawEntry("plugin.json", Encoding.UTF8.GetBytes(ManifestJson)), new RawEntry("plugin.wasm", "#!/bin/sh\necho hi\n"u8.ToArray())),
            ErrorReason.CorruptedData, "not a WebAssembly module");

    [Fact]
    public void A_component_instead_of_a_core_module_is_refused() =>
        AssertRefused(Zip(new RawEntry("plugin.json", Encoding.UTF8.GetBytes(ManifestJson)), new RawEntry("plugin.wasm", [0x00, 0x61, 0x73, 0x6D, 0x0d, 0x00, 0x01, 0x00])),
            ErrorReason.CorruptedData, "components are not supported");

    [Fact]
    public void A_leading_dot_slash_is_normalised_away()
    {
        var package = new PackageReader().Read(Zip(
            new RawEntry("./plugin.json", Encoding.UTF8.GetBytes(ManifestJson)),
            new RawEntry("./plugin.wasm", EmptyModule)));
        Assert.Equal(["plugin.json", "plugin.wasm"], package.Entries.Select(entry => entry.Path));
    }

    [Fact]
    public void Reading_never_writes_to_disk()
    {
        var before = Directory.GetFileSystemEntries(Path.GetTempPath()).Length;
        var cwdBefore = Directory.GetFileSystemEntries(Directory.GetCurrentDirectory()).Length;
        Refusal(ValidWith(new RawEntry("../../escape.txt", Data)));
        new PackageReader().Read(Valid());
        Assert.False(File.Exists(Path.Combine(Directory.GetCurrentDirectory(), "..", "..", "escape.txt")));
        Assert.Equal(cwdBefore, Directory.GetFileSystemEntries(Directory.GetCurrentDirectory()).Length);
        Assert.True(Directory.GetFileSystemEntries(Path.GetTempPath()).Length <= before + 1); // other tests may run beside
    }

    internal static byte[] RandomBytes(int count)
    {
        var bytes = new byte[count];
        new Random(count).NextBytes(bytes);
        return bytes;
    }

    private static int IndexOf(byte[] haystack, byte[] needle) => haystack.AsSpan().IndexOf(needle);
}
