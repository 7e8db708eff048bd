namespace Connectias.Sandbox.Runtime.Tests;

public sealed class PluginStorageTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("connectias-kv-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public void Values_and_usage_survive_reopening()
    {
        var storage = new PluginStorage(_directory, 1000);
        Assert.Equal(0, storage.Set("a"u8, "12345"u8));
        Assert.Equal(0, storage.Set("bb"u8, "x"u8));
        var reopened = new PluginStorage(_directory, 1000);
        Assert.Equal("12345"u8.ToArray(), reopened.Get("a"u8));
        Assert.Equal(1 + 5 + 2 + 1, reopened.UsedBytes);
        Assert.True(reopened.Delete("a"u8));
        Assert.False(reopened.Delete("a"u8));
        Assert.Null(reopened.Get("a"u8));
        Assert.Equal(3, reopened.UsedBytes);
    }

    [Fact]
    public void An_interrupted_write_leaves_the_old_value_and_its_temporary_file_is_removed()
    {
        var storage = new PluginStorage(_directory, 1000);
        storage.Set("k"u8, "old"u8);
        var target = Directory.GetFiles(_directory, "*.kv").Single();
        File.WriteAllBytes(target + ".tmp-crashed", [1, 0, 0, 0, (byte)'k', (byte)'n']); // a write cut short by a kill

        var reopened = new PluginStorage(_directory, 1000);
        Assert.Equal("old"u8.ToArray(), reopened.Get("k"u8));
        Assert.Empty(Directory.GetFiles(_directory, "*.tmp-*"));
    }

    [Fact]
    public void The_quota_counts_keys_and_values_and_refuses_with_too_large()
    {
        var storage = new PluginStorage(_directory, 10);
        Assert.Equal(0, storage.Set("k"u8, "123456789"u8));
        Assert.Equal(AbiCodes.TooLarge, storage.Set("j"u8, "1"u8));
        Assert.Equal(0, storage.Set("k"u8, "12345678"u8)); // a smaller replacement fits
        Assert.Equal(9, storage.UsedBytes);
    }
}
