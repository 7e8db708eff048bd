using System.IO.Compression;
using System.Runtime.InteropServices;

namespace Connectias.Sandbox.Packaging;

/// <summary>
/// Reads a plugin package entirely in memory and enforces the hygiene rules of SPEC §1. Every size
/// rule is checked against the central directory before anything is inflated, and every entry is then
/// inflated into a buffer of exactly its declared size, so a lying header cannot make it allocate
/// more: a package costs its uncompressed size plus small bookkeeping.
/// </summary>
public sealed class PackageReader(PackageLimits? limits = null)
{
    // Unix file-type bits in the upper half of a zip entry's external attributes.
    private const int UnixTypeMask = 0xF000;
    private const int UnixRegularFile = 0x8000;
    private const int UnixDirectory = 0x4000;
    private const int MaxSignatureFileBytes = 16 * 1024;
    private static readonly byte[] WasmMagic = [0x00, 0x61, 0x73, 0x6D];

    public PackageLimits Limits { get; } = limits ?? PackageLimits.Default;

    public PluginPackage Read(string path)
    {
        FileStream stream;
        try
        {
            stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1, FileOptions.RandomAccess);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw Corrupt($"cannot read package file '{path}': {e.Message}");
        }

        using (stream) return Read(stream);
    }

    public PluginPackage Read(ReadOnlyMemory<byte> package)
    {
        // Reuse the caller's array when there is one: the compressed bytes are never copied.
        var stream = MemoryMarshal.TryGetArray(package, out var segment)
            ? new MemoryStream(segment.Array!, segment.Offset, segment.Count, writable: false)
            : new MemoryStream(package.ToArray(), writable: false);
        using (stream) return Read(stream);
    }

    /// <summary>Reads from a seekable stream; the stream stays open.</summary>
    public PluginPackage Read(Stream package)
    {
        if (!package.CanSeek) throw new ArgumentException("the package stream must be seekable", nameof(package));
        if (package.Length > Limits.MaxPackageBytes)
            throw Corrupt($"package is {package.Length} bytes; the limit is {Limits.MaxPackageBytes} bytes compressed", (Limits.MaxPackageBytes, package.Length));

        var declaredEntries = ZipEndRecord.ReadEntryCount(package)
                              ?? throw Corrupt("is not a zip archive (no end-of-central-directory record)");
        if (declaredEntries > Limits.MaxEntries)
            throw Corrupt($"package has {declaredEntries} entries; at most {Limits.MaxEntries} are allowed", (Limits.MaxEntries, declaredEntries));

        package.Position = 0;
        ZipArchive archive;
        try
        {
            archive = new ZipArchive(package, ZipArchiveMode.Read, leaveOpen: true);
        }
        catch (Exception e) when (e is InvalidDataException or IOException or ArgumentException)
        {
            throw Corrupt($"is not a readable zip archive: {e.Message}");
        }

        using (archive)
        {
            var zipEntries = archive.Entries;
            if (zipEntries.Count > Limits.MaxEntries || zipEntries.Count != declaredEntries)
                throw Corrupt($"central directory lists {zipEntries.Count} entries but the end record declares {declaredEntries} (at most {Limits.MaxEntries} allowed)");

            var names = CheckMetadata(zipEntries);
            var entries = new List<PackageEntry>(zipEntries.Count);
            for (var i = 0; i < zipEntries.Count; i++) entries.Add(new PackageEntry(names[i], Inflate(zipEntries[i], names[i])));
            return Assemble(entries);
        }
    }

    /// <summary>Every rule that the central directory alone can decide, before any byte is inflated.</summary>
    private string[] CheckMetadata(IReadOnlyList<ZipArchiveEntry> zipEntries)
    {
        var names = new string[zipEntries.Count];
        var folded = new Dictionary<string, string>(StringComparer.Ordinal);
        long total = 0;
        for (var i = 0; i < zipEntries.Count; i++)
        {
            var entry = zipEntries[i];
            var raw = entry.FullName;
            var problem = PackagePaths.Problem(raw);
            if (problem is not null) throw Corrupt($"entry '{Printable(raw)}' {problem}");
            var name = PackagePaths.Normalize(raw);
            // Case folding catches names that are one file on case-insensitive file systems.
            if (!folded.TryAdd(name.ToUpperInvariant(), name))
                throw Corrupt($"entry '{Printable(name)}' is a duplicate of '{Printable(folded[name.ToUpperInvariant()])}' (names must be unique, ignoring case)");

            var unixType = (entry.ExternalAttributes >> 16) & UnixTypeMask;
            if (unixType is not (0 or UnixRegularFile or UnixDirectory))
            {
                var kind = unixType switch { 0xA000 => "a symbolic link", 0x2000 => "a character device", 0x6000 => "a block device", 0x1000 => "a FIFO", 0xC000 => "a socket", _ => "not a regular file" };
                throw Corrupt($"entry '{Printable(name)}' is {kind}; only regular files and directories are allowed");
            }

            if (entry.IsEncrypted) throw Corrupt($"entry '{Printable(name)}' is encrypted; encrypted entries are not allowed");
            if (name.EndsWith('/') && entry.Length != 0) throw Corrupt($"directory entry '{Printable(name)}' has content");

            total += entry.Length;
            if (total > Limits.MaxTotalUncompressedBytes)
                throw Corrupt($"package inflates to more than {Limits.MaxTotalUncompressedBytes} bytes (reached at entry '{Printable(name)}')", (Limits.MaxTotalUncompressedBytes, total));

            if (entry.Length > Limits.CompressionRatioFloorBytes &&
                entry.Length > Limits.MaxCompressionRatio * Math.Max(entry.CompressedLength, 1))
            {
                var ratio = entry.Length / Math.Max(entry.CompressedLength, 1);
                throw Corrupt($"entry '{Printable(name)}' has a compression ratio of {ratio}:1 ({entry.CompressedLength} -> {entry.Length} bytes); " +
                              $"above {Limits.CompressionRatioFloorBytes} bytes at most {Limits.MaxCompressionRatio}:1 is allowed", (Limits.MaxCompressionRatio, ratio));
            }

            if (name == PluginManifest.FileName && entry.Length > Limits.MaxManifestBytes)
                throw Corrupt($"{PluginManifest.FileName} is {entry.Length} bytes; at most {Limits.MaxManifestBytes} are allowed", (Limits.MaxManifestBytes, entry.Length));
            if (PackagePaths.IsSignatureFile(name) && entry.Length > MaxSignatureFileBytes)
                throw new SandboxException(ErrorReason.InvalidSignature, $"signature file '{name}' is {entry.Length} bytes; a signature is at most {MaxSignatureFileBytes}");

            names[i] = name;
        }

        return names;
    }

    /// <summary>Inflates one entry into a buffer of its declared size and proves size and CRC match.</summary>
    private static byte[] Inflate(ZipArchiveEntry entry, string name)
    {
        var content = new byte[entry.Length];
        try
        {
            using var stream = entry.Open();
            var read = 0;
            while (read < content.Length)
            {
                var n = stream.Read(content, read, content.Length - read);
                if (n == 0) throw Corrupt($"entry '{Printable(name)}' is truncated: {read} of {content.Length} declared bytes");
                read += n;
            }

            Span<byte> probe = stackalloc byte[1];
            if (stream.Read(probe) != 0) throw Corrupt($"entry '{Printable(name)}' inflates to more than its declared {content.Length} bytes");
        }
        catch (Exception e) when (e is InvalidDataException or IOException or NotSupportedException)
        {
            throw Corrupt($"entry '{Printable(name)}' cannot be read: {e.Message}");
        }

        if (Crc32.Compute(content) != entry.Crc32)
            throw Corrupt($"entry '{Printable(name)}' fails its CRC-32 check (the data is damaged, or its header lies about its size)");
        return content;
    }

    private static PluginPackage Assemble(List<PackageEntry> entries)
    {
        var byName = entries.ToDictionary(entry => entry.Path, StringComparer.Ordinal);
        if (!byName.TryGetValue(PluginManifest.FileName, out var manifestEntry))
            throw Corrupt($"package has no {PluginManifest.FileName} at its root");
        var manifest = ManifestParser.Parse(manifestEntry.Content);

        if (!byName.TryGetValue(manifest.EntryPoint, out var module))
            throw Corrupt($"package has no '{manifest.EntryPoint}', the module named by entry_point");
        if (module.Content.Length < 8 || !module.Content.AsSpan(0, 4).SequenceEqual(WasmMagic))
            throw Corrupt($"'{manifest.EntryPoint}' is not a WebAssembly module (no \\0asm header)");
        if (module.Content[4] != 1 || module.Content[5] != 0 || module.Content[6] != 0 || module.Content[7] != 0)
            throw Corrupt($"'{manifest.EntryPoint}' is not a WebAssembly core module version 1 (components are not supported)");

        var signatures = new List<PackageSignature>();
        var unknown = new List<string>();
        foreach (var entry in entries.Where(entry => PackagePaths.IsSignatureFile(entry.Path)))
        {
            SignatureAlgorithm? algorithm = entry.Path switch
            {
                PackagePaths.RsaSignatureFile => SignatureAlgorithm.Rsa,
                PackagePaths.EcSignatureFile => SignatureAlgorithm.Ec,
                _ => null,
            };
            if (algorithm is null) unknown.Add(entry.Path);
            else signatures.Add(DecodeSignature(entry, algorithm.Value));
        }

        return new PluginPackage(entries, manifest, module, signatures, unknown);
    }

    private static PackageSignature DecodeSignature(PackageEntry entry, SignatureAlgorithm algorithm)
    {
        // Tools that write base64 often wrap lines; white space carries no meaning here.
        var text = new string(System.Text.Encoding.ASCII.GetString(entry.Content).Where(c => !char.IsWhiteSpace(c)).ToArray());
        try
        {
            var value = Convert.FromBase64String(text);
            return value.Length == 0
                ? new PackageSignature(entry.Path, algorithm, null, "is empty")
                : new PackageSignature(entry.Path, algorithm, value, null);
        }
        catch (FormatException)
        {
            return new PackageSignature(entry.Path, algorithm, null, "is not valid base64 (standard alphabet)");
        }
    }

    private static string Printable(string name) =>
        new(name.Select(c => char.IsControl(c) ? '?' : c).Take(200).ToArray());

    /// <summary>A hygiene refusal; <paramref name="figures"/> become the ErrorInfo <c>limit</c> and <c>used</c>.</summary>
    private static SandboxException Corrupt(string problem, (long Limit, long Used)? figures = null)
    {
        var metadata = new Dictionary<string, string>();
        if (figures is var (limit, used))
        {
            metadata["limit"] = limit.ToString(System.Globalization.CultureInfo.InvariantCulture);
            metadata["used"] = used.ToString(System.Globalization.CultureInfo.InvariantCulture);
        }

        var message = problem.StartsWith("is ", StringComparison.Ordinal) ? "package " + problem : problem;
        return new SandboxException(ErrorReason.CorruptedData, message, metadata);
    }
}
