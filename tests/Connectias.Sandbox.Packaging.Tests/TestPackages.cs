using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;

namespace Connectias.Sandbox.Packaging.Tests;

/// <summary>Builds packages for tests, including ones no honest tool would write.</summary>
internal static class TestPackages
{
    /// <summary>A tiny valid WebAssembly module: magic, version 1 and one custom section named "test".</summary>
    public static readonly byte[] EmptyModule = [0x00, 0x61, 0x73, 0x6D, 0x01, 0x00, 0x00, 0x00, 0x00, 0x05, 0x04, (byte)'t', (byte)'e', (byte)'s', (byte)'t'];

    public const string ManifestJson = """{"id":"com.example.hello","name":"Hello","version":"1.2.3","permissions":["storage"]}""";

    public static Dictionary<string, byte[]> ValidFiles() => new()
    {
        ["plugin.json"] = Encoding.UTF8.GetBytes(ManifestJson),
        ["plugin.wasm"] = EmptyModule,
        ["README.md"] = "# Hello\n"u8.ToArray(),
        ["assets/data.txt"] = "some data"u8.ToArray(),
    };

    public static byte[] Valid() => PackageWriter.Write(ValidFiles().Select(pair => new PackageEntry(pair.Key, pair.Value)));

    public static byte[] WithManifest(string manifestJson)
    {
        var files = ValidFiles();
        files["plugin.json"] = Encoding.UTF8.GetBytes(manifestJson);
        return Zip(files.Select(pair => new RawEntry(pair.Key, pair.Value)).ToArray());
    }

    /// <summary>An entry written exactly as given: any name, any attributes.</summary>
    public sealed record RawEntry(string Name, byte[] Content, int? UnixMode = null, CompressionLevel Level = CompressionLevel.Optimal);

    public static byte[] Zip(params RawEntry[] entries)
    {
        using var output = new MemoryStream();
        using (var archive = new ZipArchive(output, ZipArchiveMode.Create, leaveOpen: true))
        {
            foreach (var entry in entries)
            {
                var zipEntry = archive.CreateEntry(entry.Name, entry.Level);
                if (entry.UnixMode is { } mode) zipEntry.ExternalAttributes = mode << 16;
                using var stream = zipEntry.Open();
                stream.Write(entry.Content);
            }
        }

        return output.ToArray();
    }

    /// <summary>The valid files plus the given extra raw entries.</summary>
    public static byte[] ValidWith(params RawEntry[] extra) =>
        Zip(ValidFiles().Select(pair => new RawEntry(pair.Key, pair.Value)).Concat(extra).ToArray());

    /// <summary>Sets general-purpose bit 0 ("encrypted") of the named entry in both of its headers.</summary>
    public static byte[] MarkEncrypted(byte[] zip, string name)
    {
        var copy = (byte[])zip.Clone();
        foreach (var header in Headers(copy, name))
        {
            var flagOffset = header.Central ? 8 : 6;
            copy[header.Offset + flagOffset] |= 1;
        }

        return copy;
    }

    /// <summary>Rewrites the uncompressed size both headers declare for the named entry (a lying header).</summary>
    public static byte[] DeclareSize(byte[] zip, string name, uint size)
    {
        var copy = (byte[])zip.Clone();
        foreach (var header in Headers(copy, name))
            BinaryPrimitives.WriteUInt32LittleEndian(copy.AsSpan(header.Offset + (header.Central ? 24 : 22)), size);
        return copy;
    }

    private sealed record Header(int Offset, bool Central);

    private static IEnumerable<Header> Headers(byte[] zip, string name)
    {
        var nameBytes = Encoding.UTF8.GetBytes(name);
        for (var at = 0; at + 46 < zip.Length; at++)
        {
            var signature = BinaryPrimitives.ReadUInt32LittleEndian(zip.AsSpan(at));
            if (signature == 0x04034b50 && Matches(zip, at + 30, BinaryPrimitives.ReadUInt16LittleEndian(zip.AsSpan(at + 26)), nameBytes))
                yield return new Header(at, false);
            if (signature == 0x02014b50 && Matches(zip, at + 46, BinaryPrimitives.ReadUInt16LittleEndian(zip.AsSpan(at + 28)), nameBytes))
                yield return new Header(at, true);
        }
    }

    private static bool Matches(byte[] zip, int at, int length, byte[] name) =>
        length == name.Length && at + length <= zip.Length && zip.AsSpan(at, length).SequenceEqual(name);

    public static SandboxException Refusal(byte[] package, PackageLimits? limits = null) =>
        Assert.Throws<SandboxException>(() => new PackageReader(limits).Read(package));

    public static void AssertRefused(byte[] package, ErrorReason reason, string messagePart, PackageLimits? limits = null)
    {
        var error = Refusal(package, limits);
        Assert.Equal(reason, error.Reason);
        Assert.Contains(messagePart, error.Message, StringComparison.OrdinalIgnoreCase);
    }
}
