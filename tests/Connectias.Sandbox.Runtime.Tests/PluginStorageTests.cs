using System.Buffers.Binary;
using System.Security.Cryptography;

namespace Connectias.Sandbox.Runtime.Tests;

public sealed class PluginStorageTests : IDisposable
{
    private const int Block = PluginStorage.BlockBytes;
    private const int ManyEntries = 1000;
    private readonly string _directory = Directory.CreateTempSubdirectory("connectias-kv-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public void Values_and_usage_survive_reopening()
    {
        var storage = new PluginStorage(_directory, 10 * Block, ManyEntries);
        Assert.Equal(0, storage.Set("a"u8, "12345"u8));
        Assert.Equal(0, storage.Set("bb"u8, "x"u8));
        var reopened = new PluginStorage(_directory, 10 * Block, ManyEntries);
        Assert.Equal("12345"u8.ToArray(), reopened.Get("a"u8));
        Assert.Equal(2 * Block, reopened.UsedBytes);
        Assert.Equal(2, reopened.Entries);
        Assert.True(reopened.Delete("a"u8));
        Assert.False(reopened.Delete("a"u8));
        Assert.Null(reopened.Get("a"u8));
        Assert.Equal(Block, reopened.UsedBytes);
        Assert.Equal(1, reopened.Entries);
    }

    [Fact]
    public void An_interrupted_write_leaves_the_old_value_and_its_temporary_file_is_removed()
    {
        var storage = new PluginStorage(_directory, 10 * Block, ManyEntries);
        storage.Set("k"u8, "old"u8);
        var target = Directory.GetFiles(_directory, "*.kv").Single();
        File.WriteAllBytes(target + ".tmp-crashed", [1, 0, 0, 0, (byte)'k', (byte)'n']); // a write cut short by a kill

        var reopened = new PluginStorage(_directory, 10 * Block, ManyEntries);
        Assert.Equal("old"u8.ToArray(), reopened.Get("k"u8));
        Assert.Empty(Directory.GetFiles(_directory, "*.tmp-*"));
        Assert.Equal(1, reopened.Entries); // the leftover is neither an entry nor charged
        Assert.Equal(Block, reopened.UsedBytes);
    }

    [Theory]
    [InlineData(1, 0, Block)]                   // a one-byte key and an empty value still take a block
    [InlineData(3, 1, Block)]
    [InlineData(1, Block - 5, Block)]           // 4 + 1 + 4091 bytes: exactly one block
    [InlineData(1, Block - 4, 2 * Block)]       // one byte more: two
    [InlineData(1024, 10_000, 3 * Block)]       // 11,028 bytes
    public void An_entry_costs_its_file_rounded_up_to_whole_blocks(int keyBytes, int valueBytes, long cost)
    {
        Assert.Equal(cost, PluginStorage.EntryCost(keyBytes, valueBytes));
        var storage = new PluginStorage(_directory, 10 * Block, ManyEntries);
        Assert.Equal(0, storage.Set(new byte[keyBytes], new byte[valueBytes]));
        Assert.Equal(cost, storage.UsedBytes);
    }

    [Fact]
    public void Tiny_entries_fill_the_quota_at_one_block_each_and_are_refused_with_too_large()
    {
        // The flood: 3-byte keys, charged 3 bytes each, made 24,000 files under a 10 MiB quota.
        var storage = new PluginStorage(_directory, 8 * Block, ManyEntries);
        for (var i = 0; i < 8; i++) Assert.Equal(0, storage.Set(Key3(i), []));
        Assert.Equal(AbiCodes.TooLarge, storage.Set(Key3(8), []));
        Assert.Equal(8, Directory.GetFiles(_directory, "*.kv").Length);
        Assert.Equal(8 * Block, storage.UsedBytes);
    }

    [Fact]
    public void The_quota_refuses_with_too_large_and_a_replacement_that_fits_still_works()
    {
        var storage = new PluginStorage(_directory, 2 * Block, ManyEntries);
        Assert.Equal(0, storage.Set("k"u8, new byte[Block])); // 4 + 1 + 4096 bytes: two blocks
        Assert.Equal(AbiCodes.TooLarge, storage.Set("j"u8, "1"u8));
        Assert.Equal(AbiCodes.TooLarge, storage.Set("k"u8, new byte[2 * Block])); // a bigger replacement does not fit
        Assert.Equal(0, storage.Set("k"u8, "small"u8)); // a smaller one does
        Assert.Equal(Block, storage.UsedBytes);
        Assert.Equal(0, storage.Set("j"u8, "1"u8));
    }

    [Fact]
    public void The_entry_limit_refuses_a_new_key_with_too_large_but_not_a_replacement()
    {
        var storage = new PluginStorage(_directory, 100 * Block, maxEntries: 3);
        for (var i = 0; i < 3; i++) Assert.Equal(0, storage.Set(Key3(i), "v"u8));
        Assert.Equal(AbiCodes.TooLarge, storage.Set(Key3(3), "v"u8));
        Assert.Equal(0, storage.Set(Key3(0), "replaced"u8));
        Assert.True(storage.Delete(Key3(1)));
        Assert.Equal(0, storage.Set(Key3(3), "v"u8)); // a deleted entry makes room
        Assert.Equal(AbiCodes.TooLarge, new PluginStorage(_directory, 100 * Block, maxEntries: 3).Set(Key3(4), "v"u8)); // counted again on reopening
    }

    [Fact]
    public void A_store_written_before_entries_cost_blocks_is_charged_by_blocks_when_opened()
    {
        // The format is unchanged (a file per key, named by the key's SHA-256); only the charge was key + value bytes.
        for (var i = 0; i < 5; i++)
            File.WriteAllBytes(Path.Combine(_directory, Convert.ToHexStringLower(SHA256.HashData(Key3(i))) + ".kv"), Record(Key3(i), "v"u8));
        var storage = new PluginStorage(_directory, 100 * Block, ManyEntries);
        Assert.Equal(5 * Block, storage.UsedBytes);
        Assert.Equal(5, storage.Entries);
        Assert.Equal("v"u8.ToArray(), storage.Get(Key3(4)));
    }

    [Fact]
    public void A_store_already_over_a_lower_quota_and_entry_limit_can_be_read_shrunk_and_emptied_but_not_grown()
    {
        var writer = new PluginStorage(_directory, 100 * Block, ManyEntries);
        for (var i = 0; i < 4; i++) Assert.Equal(0, writer.Set(Key3(i), new byte[Block]));
        var storage = new PluginStorage(_directory, 2 * Block, maxEntries: 2); // 8 blocks and 4 entries held
        Assert.Equal(new byte[Block], storage.Get(Key3(0)));
        Assert.Equal(AbiCodes.TooLarge, storage.Set(Key3(9), []));
        Assert.Equal(AbiCodes.TooLarge, storage.Set(Key3(0), new byte[2 * Block]));
        Assert.Equal(0, storage.Set(Key3(0), [])); // costs less than before: allowed though still over the quota
        Assert.Equal(7 * Block, storage.UsedBytes);
        for (var i = 0; i < 4; i++) Assert.True(storage.Delete(Key3(i)));
        Assert.Equal(0, storage.UsedBytes);
        Assert.Equal(0, storage.Set(Key3(9), []));
    }

    private static byte[] Key3(int i) => [(byte)'k', (byte)(i >> 8), (byte)i];

    /// <summary>A file as PluginStorage writes it: the key's length, the key, the value.</summary>
    private static byte[] Record(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value)
    {
        var record = new byte[4 + key.Length + value.Length];
        BinaryPrimitives.WriteInt32LittleEndian(record, key.Length);
        key.CopyTo(record.AsSpan(4));
        value.CopyTo(record.AsSpan(4 + key.Length));
        return record;
    }
}
