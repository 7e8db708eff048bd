using System.IO.Compression;

namespace Connectias.Sandbox.Packaging;

/// <summary>
/// Writes packages reproducibly: entries in signing order, one fixed timestamp, no directory entries,
/// regular-file attributes. The same inputs always give the same bytes.
/// </summary>
public static class PackageWriter
{
    private static readonly DateTimeOffset FixedTimestamp = new(2000, 1, 1, 0, 0, 0, TimeSpan.Zero);
    private const int RegularFileMode = 0x8000 | 0b110_100_100; // -rw-r--r--

    /// <summary>
    /// Packs every regular file below <paramref name="directory"/> but those its <c>.connectiasignore</c> names
    /// (see <see cref="PackageIgnore"/>); symbolic links are refused.
    /// </summary>
    public static byte[] PackDirectory(string directory)
    {
        if (!Directory.Exists(directory)) throw new DirectoryNotFoundException($"'{directory}' is not a directory");
        var root = Path.GetFullPath(directory);
        var ignore = PackageIgnore.For(root);
        var entries = new List<PackageEntry>();
        foreach (var path in Directory.EnumerateFileSystemEntries(root, "*", new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0 }))
        {
            var info = new FileInfo(path);
            var name = Path.GetRelativePath(root, path).Replace(Path.DirectorySeparatorChar, '/');
            if (ignore.Ignores(name)) continue;
            if (info.LinkTarget is not null)
                throw new InvalidOperationException($"'{Path.GetRelativePath(root, path)}' is a symbolic link; packages hold regular files only");
            if (info.Attributes.HasFlag(FileAttributes.Directory)) continue;
            // A stale signature would not match the new contents; signing is a separate step.
            if (PackagePaths.IsSignatureFile(name)) continue;
            entries.Add(new PackageEntry(name, File.ReadAllBytes(path)));
        }

        return Write(entries);
    }

    /// <summary>Writes the given entries (signature files included, last) into a new zip.</summary>
    public static byte[] Write(IEnumerable<PackageEntry> entries)
    {
        var all = entries.ToList();
        var ordered = SignedContent.Order(all).Concat(all.Where(entry => PackagePaths.IsSignatureFile(entry.Path)).OrderBy(entry => entry.Path, StringComparer.Ordinal));
        using var output = new MemoryStream();
        using (var archive = new ZipArchive(output, ZipArchiveMode.Create, leaveOpen: true))
        {
            foreach (var entry in ordered)
            {
                if (entry.IsDirectory) continue;
                var zipEntry = archive.CreateEntry(entry.Path, CompressionLevel.Optimal);
                zipEntry.LastWriteTime = FixedTimestamp;
                zipEntry.ExternalAttributes = RegularFileMode << 16;
                using var stream = zipEntry.Open();
                stream.Write(entry.Content);
            }
        }

        return output.ToArray();
    }
}
