using System.Buffers.Binary;
using System.Security.Cryptography;

namespace Connectias.Sandbox.Runtime;

/// <summary>
/// A plugin's key-value store: one file per key under its own directory, each written to a temporary
/// file, flushed to disk and renamed over the old one, so after a crash or a kill a value is either
/// wholly there or not at all. Each entry is charged what its file takes on disk, at least one block
/// (<see cref="EntryCost"/>), within the quota, and there are at most <c>maxEntries</c> of them: 3-byte keys
/// once made 24,000 files (96 MB on disk) that were charged 72 KB. A store written before entries cost
/// blocks is charged the same way when it is opened.
/// </summary>
public sealed class PluginStorage
{
    public const int MaxKeyBytes = 1024;

    /// <summary>The unit an entry is charged in: the block of ext4, xfs and btrfs at their defaults and of most disks.</summary>
    public const int BlockBytes = 4096;

    private const string Suffix = ".kv";
    private const string TemporaryMarker = ".tmp-";
    private const int HeaderBytes = sizeof(int); // the key's length, before the key and the value

    private readonly string _directory;
    private long _usedBytes;
    private int _entries;

    public PluginStorage(string directory, long quotaBytes, int maxEntries)
    {
        _directory = directory;
        QuotaBytes = quotaBytes;
        MaxEntries = maxEntries;
        Directory.CreateDirectory(directory);
        foreach (var leftover in Directory.EnumerateFiles(directory, "*" + TemporaryMarker + "*"))
            File.Delete(leftover); // an interrupted write: the old value (if any) is still intact
        foreach (var file in Directory.EnumerateFiles(directory, "*" + Suffix))
        {
            _usedBytes += CostOfFile(new FileInfo(file).Length);
            _entries++;
        }
    }

    public long QuotaBytes { get; }

    public int MaxEntries { get; }

    /// <summary>What the entries are charged together: the sum of their <see cref="EntryCost"/>s.</summary>
    public long UsedBytes => _usedBytes;

    public int Entries => _entries;

    /// <summary>
    /// An entry's charge: its file (the key's length, the key and the value) rounded up to whole blocks, so at least
    /// one block. A file of a few bytes still takes a block on disk (and an inode, which the entry count bounds).
    /// </summary>
    public static long EntryCost(int keyBytes, int valueBytes) => CostOfFile(HeaderBytes + (long)keyBytes + valueBytes);

    private static long CostOfFile(long fileBytes) => Math.Max(1, (fileBytes + BlockBytes - 1) / BlockBytes) * BlockBytes;

    public byte[]? Get(ReadOnlySpan<byte> key)
    {
        var path = PathOf(key);
        if (!File.Exists(path)) return null;
        var record = File.ReadAllBytes(path);
        var keyLength = BinaryPrimitives.ReadInt32LittleEndian(record);
        if (!record.AsSpan(HeaderBytes, keyLength).SequenceEqual(key)) return null; // a different key with the same hash
        return record[(HeaderBytes + keyLength)..];
    }

    /// <summary>
    /// Stores a value; returns 0, or <see cref="AbiCodes.TooLarge"/> (SPEC: too large / quota) when it would take the
    /// store past its quota or its number of entries. Replacing a value with one that costs no more always works, so
    /// a store over a quota that was lowered (or over the charge of an older version) can still be used and shrunk.
    /// </summary>
    public int Set(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value)
    {
        var path = PathOf(key);
        var exists = File.Exists(path);
        var previous = exists ? CostOfFile(new FileInfo(path).Length) : 0;
        var added = EntryCost(key.Length, value.Length);
        if (!exists && _entries >= MaxEntries) return AbiCodes.TooLarge;
        if (added > previous && _usedBytes - previous + added > QuotaBytes) return AbiCodes.TooLarge;

        var record = new byte[HeaderBytes + key.Length + value.Length];
        BinaryPrimitives.WriteInt32LittleEndian(record, key.Length);
        key.CopyTo(record.AsSpan(HeaderBytes));
        value.CopyTo(record.AsSpan(HeaderBytes + key.Length));
        var temporary = path + TemporaryMarker + Guid.NewGuid().ToString("N");
        using (var stream = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None, 4096, FileOptions.None))
        {
            stream.Write(record);
            stream.Flush(flushToDisk: true);
        }

        File.Move(temporary, path, overwrite: true); // rename(2): atomic replacement
        _usedBytes += added - previous;
        if (!exists) _entries++;
        return 0;
    }

    public bool Delete(ReadOnlySpan<byte> key)
    {
        var path = PathOf(key);
        if (!File.Exists(path)) return false;
        var cost = CostOfFile(new FileInfo(path).Length);
        File.Delete(path);
        _usedBytes -= cost;
        _entries--;
        return true;
    }

    private string PathOf(ReadOnlySpan<byte> key) =>
        Path.Combine(_directory, Convert.ToHexStringLower(SHA256.HashData(key)) + Suffix);
}
