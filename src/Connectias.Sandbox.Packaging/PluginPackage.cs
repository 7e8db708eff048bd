using System.Security.Cryptography;
using System.Text;

namespace Connectias.Sandbox.Packaging;

/// <summary>One entry of a package, its name normalised, its bytes fully read and CRC-checked.</summary>
public sealed class PackageEntry(string path, byte[] content)
{
    public string Path { get; } = path;
    public byte[] Content { get; } = content;
    public bool IsDirectory => Path.EndsWith('/');
}

public enum SignatureAlgorithm
{
    /// <summary>RSA PKCS#1 v1.5 with SHA-256, in <c>META-INF/SIGNATURE.RSA</c>.</summary>
    Rsa,

    /// <summary>ECDSA P-256 with SHA-256, DER-encoded, in <c>META-INF/SIGNATURE.EC</c>.</summary>
    Ec,
}

/// <summary>A signature file as found in the package: decoded, or with the reason it could not be.</summary>
public sealed record PackageSignature(string EntryPath, SignatureAlgorithm Algorithm, byte[]? Value, string? Problem);

/// <summary>A package that passed every hygiene and manifest rule. Its signature is checked separately.</summary>
public sealed class PluginPackage
{
    internal PluginPackage(IReadOnlyList<PackageEntry> entries, PluginManifest manifest, PackageEntry module,
        IReadOnlyList<PackageSignature> signatures, IReadOnlyList<string> unknownSignatureFiles)
    {
        Entries = entries;
        Manifest = manifest;
        ModuleEntry = module;
        Signatures = signatures;
        UnknownSignatureFiles = unknownSignatureFiles;
    }

    /// <summary>Every entry, in archive order.</summary>
    public IReadOnlyList<PackageEntry> Entries { get; }

    public PluginManifest Manifest { get; }

    public PackageEntry ModuleEntry { get; }

    /// <summary>The WebAssembly module named by the manifest's <c>entry_point</c>.</summary>
    public ReadOnlyMemory<byte> Module => ModuleEntry.Content;

    public IReadOnlyList<PackageSignature> Signatures { get; }

    /// <summary><c>META-INF/SIGNATURE.*</c> files of a kind this host does not know; they are ignored.</summary>
    public IReadOnlyList<string> UnknownSignatureFiles { get; }

    public long UncompressedBytes => Entries.Sum(entry => (long)entry.Content.Length);

    /// <summary>SHA-256 of the signed bytes, computed without materialising them.</summary>
    public byte[] ComputeSignedDigest() => SignedContent.Digest(Entries);

    /// <summary>Writes the exact bytes a signer signs, e.g. for an external signing tool or an HSM.</summary>
    public void WriteSignedBytes(Stream destination) => SignedContent.Write(Entries, destination);
}

/// <summary>
/// The signed bytes of SPEC §1: every entry but <c>META-INF/SIGNATURE.*</c>, sorted by the UTF-8 bytes of
/// the normalised path, each contributing <c>path|size|content</c>.
/// </summary>
public static class SignedContent
{
    public static IEnumerable<PackageEntry> Order(IEnumerable<PackageEntry> entries) =>
        entries.Where(entry => !PackagePaths.IsSignatureFile(entry.Path))
            .Select(entry => (entry, key: Encoding.UTF8.GetBytes(entry.Path)))
            .OrderBy(pair => pair.key, Utf8Ordinal.Instance)
            .Select(pair => pair.entry);

    public static byte[] Digest(IEnumerable<PackageEntry> entries)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var entry in Order(entries))
        {
            hash.AppendData(Header(entry));
            hash.AppendData(entry.Content);
        }

        return hash.GetHashAndReset();
    }

    public static void Write(IEnumerable<PackageEntry> entries, Stream destination)
    {
        foreach (var entry in Order(entries))
        {
            destination.Write(Header(entry));
            destination.Write(entry.Content);
        }
    }

    private static byte[] Header(PackageEntry entry) =>
        Encoding.UTF8.GetBytes($"{entry.Path}|{entry.Content.Length.ToString(System.Globalization.CultureInfo.InvariantCulture)}|");

    private sealed class Utf8Ordinal : IComparer<byte[]>
    {
        public static readonly Utf8Ordinal Instance = new();

        public int Compare(byte[]? x, byte[]? y) => x.AsSpan().SequenceCompareTo(y.AsSpan());
    }
}
