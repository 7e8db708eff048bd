using Connectias.Sandbox.Daemon.Hosting;
using Connectias.Sandbox.Daemon.Workers;
using Microsoft.Extensions.Logging.Abstractions;

namespace Connectias.Sandbox.Daemon.UnitTests;

/// <summary>The compiled-module cache hands out only what it wrote itself, for the module and engine it was written for.</summary>
public sealed class CompiledModuleCacheTests : IDisposable
{
    private const string Engine = "wasmtime-50.0.1+fuel,epoch,opt=speed";
    private static readonly byte[] Module = "\0asm module one"u8.ToArray();
    private static readonly byte[] OtherModule = "\0asm module two"u8.ToArray();
    private static readonly byte[] Compiled = Enumerable.Range(0, 4096).Select(i => (byte)i).ToArray();
    private readonly string _state = Directory.CreateTempSubdirectory("connectias-cache-").FullName;

    private CompiledModuleCache Cache(long maxBytes = 1 << 20) =>
        new(new DaemonOptions { StateDir = _state, ModuleCacheMaxBytes = maxBytes }, NullLogger<CompiledModuleCache>.Instance);

    private string EntryPath => Assert.Single(Directory.GetFiles(Path.Combine(_state, "cache", "modules"), "*.cwasm"));

    [Fact]
    public void What_is_put_comes_back_for_the_same_module_and_engine_only()
    {
        var cache = Cache();
        cache.Put(ModuleKey.For(Engine, Module), Compiled);
        Assert.Equal(Compiled, cache.TryGet(ModuleKey.For(Engine, Module)));
        Assert.Null(cache.TryGet(ModuleKey.For(Engine, OtherModule)));
        Assert.Null(cache.TryGet(ModuleKey.For("wasmtime-51.0.0+fuel,epoch,opt=speed", Module)));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(_state, "cache", "secret")));
        Assert.Equal(Compiled, Cache().TryGet(ModuleKey.For(Engine, Module))); // a restarted daemon keeps its secret and its entries
    }

    [Theory]
    [InlineData("flip a byte of the code")]
    [InlineData("flip a byte of the MAC")]
    [InlineData("truncate")]
    [InlineData("empty")]
    public void A_tampered_or_truncated_entry_is_discarded_and_deleted(string damage)
    {
        var cache = Cache();
        cache.Put(ModuleKey.For(Engine, Module), Compiled);
        var path = EntryPath;
        var bytes = File.ReadAllBytes(path);
        switch (damage)
        {
            case "flip a byte of the code": bytes[^100] ^= 0x01; break;
            case "flip a byte of the MAC": bytes[3] ^= 0x80; break;
            case "truncate": bytes = bytes[..(bytes.Length / 2)]; break;
            default: bytes = []; break;
        }

        File.WriteAllBytes(path, bytes);
        Assert.Null(cache.TryGet(ModuleKey.For(Engine, Module)));
        Assert.False(File.Exists(path));
    }

    [Fact]
    public void A_genuine_entry_moved_under_another_modules_name_is_discarded()
    {
        var cache = Cache();
        cache.Put(ModuleKey.For(Engine, OtherModule), Compiled);
        var genuine = EntryPath;
        cache.Put(ModuleKey.For(Engine, Module), [1, 2, 3]);
        var target = Directory.GetFiles(Path.Combine(_state, "cache", "modules"), "*.cwasm").Single(p => p != genuine);
        File.Copy(genuine, target, overwrite: true);
        Assert.Null(cache.TryGet(ModuleKey.For(Engine, Module)));
        Assert.Equal(Compiled, cache.TryGet(ModuleKey.For(Engine, OtherModule)));
    }

    [Fact]
    public void An_entry_written_under_another_daemons_secret_is_discarded()
    {
        Cache().Put(ModuleKey.For(Engine, Module), Compiled);
        File.WriteAllBytes(Path.Combine(_state, "cache", "secret"), new byte[32]);
        Assert.Null(Cache().TryGet(ModuleKey.For(Engine, Module)));
    }

    [Fact]
    public void The_least_recently_used_entries_go_first_when_the_cache_is_full()
    {
        var cache = Cache(maxBytes: 2 * (Compiled.Length + 32));
        cache.Put(ModuleKey.For(Engine, Module), Compiled);
        Thread.Sleep(20); // time stamps order the entries
        cache.Put(ModuleKey.For(Engine, OtherModule), Compiled);
        Thread.Sleep(20);
        Assert.NotNull(cache.TryGet(ModuleKey.For(Engine, Module))); // a use: now the newest
        Thread.Sleep(20);
        cache.Put(ModuleKey.For(Engine, "\0asm module three"u8.ToArray()), Compiled);
        Assert.NotNull(cache.TryGet(ModuleKey.For(Engine, Module)));
        Assert.Null(cache.TryGet(ModuleKey.For(Engine, OtherModule)));
        Assert.Equal(2, Directory.GetFiles(Path.Combine(_state, "cache", "modules"), "*.cwasm").Length);
    }

    [Fact]
    public void A_cache_of_size_zero_keeps_nothing()
    {
        var cache = Cache(maxBytes: 0);
        Assert.False(cache.Enabled);
        cache.Put(ModuleKey.For(Engine, Module), Compiled);
        Assert.Null(cache.TryGet(ModuleKey.For(Engine, Module)));
        Assert.False(Directory.Exists(Path.Combine(_state, "cache")));
    }

    public void Dispose() => Directory.Delete(_state, recursive: true);
}
