using System.Buffers.Binary;
using System.Security.Cryptography;

namespace Connectias.Sandbox.Runtime;

/// <summary>
/// A plugin's key-value store: one file per key under its own directory, each written to a temporary
/// file, flushed to disk and renamed over the old one, so after a crash or a kill a value is either
/// wholly there or not at all. Usage (key + value bytes) is held within the quota.
/// </summary>
public sealed class PluginStorage
{
    public const int MaxKeyBytes = 1024;
    private const string Suffix = ".kv";
    private const string TemporaryMarker = ".tmp-";

    private readonly string _directory;
    private long _usedBytes;

    public PluginStorage(string directory, long quotaBytes)
    {
        _directory = directory;
        QuotaBytes = quotaBytes;
        Directory.CreateDirectory(directory);
        foreach (var leftover in Directory.EnumerateFiles(directory, "*" + TemporaryMarker + "*"))
            File.Delete(leftover); // an interrupted write: the old value (if any) is still intact
        foreach (var file in Directory.EnumerateFiles(directory, "*" + Suffix))
        {
            var length = new FileInfo(file).Length;
            _usedBytes += Math.Max(0, length - sizeof(int));
        }
    }

    public long QuotaBytes { get; }

    public long UsedBytes => _usedBytes;

    public byte[]? Get(ReadOnlySpan<byte> key)
    {
        var path = PathOf(key);
        if (!File.Exists(path)) return null;
        var record = File.ReadAllBytes(path);
        var keyLength = BinaryPrimitives.ReadInt32LittleEndian(record);
        if (!record.AsSpan(sizeof(int), keyLength).SequenceEqual(key)) return null; // a different key with the same hash
        return record[(sizeof(int) + keyLength)..];
    }

    /// <summary>Stores a value; returns 0, or <see cref="AbiCodes.TooLarge"/> when it would exceed the quota.</summary>
    public int Set(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value)
    {
        var path = PathOf(key);
        var previous = File.Exists(path) ? new FileInfo(path).Length - sizeof(int) : 0;
        var added = key.Length + value.Length;
        if (_usedBytes - previous + added > QuotaBytes) return AbiCodes.TooLarge;

        var record = new byte[sizeof(int) + key.Length + value.Length];
        BinaryPrimitives.WriteInt32LittleEndian(record, key.Length);
        key.CopyTo(record.AsSpan(sizeof(int)));
        value.CopyTo(record.AsSpan(sizeof(int) + key.Length));
        var temporary = path + TemporaryMarker + Guid.NewGuid().ToString("N");
        using (var stream = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None, 4096, FileOptions.None))
        {
            stream.Write(record);
            stream.Flush(flushToDisk: true);
        }

        File.Move(temporary, path, overwrite: true); // rename(2): atomic replacement
        _usedBytes += added - previous;
        return 0;
    }

    public bool Delete(ReadOnlySpan<byte> key)
    {
        var path = PathOf(key);
        if (!File.Exists(path)) return false;
        var size = new FileInfo(path).Length - sizeof(int);
        File.Delete(path);
        _usedBytes -= size;
        return true;
    }

    private string PathOf(ReadOnlySpan<byte> key) =>
        Path.Combine(_directory, Convert.ToHexStringLower(SHA256.HashData(key)) + Suffix);
}
