using System.Security.Cryptography;
using System.Text;
using Connectias.Sandbox.Daemon.Hosting;

namespace Connectias.Sandbox.Daemon.Workers;

/// <summary>
/// Compiled code of modules, kept under <c>STATE/cache/modules</c> so a restart or a reload skips Cranelift. An entry
/// is keyed by the module's SHA-256 and the worker's engine (Wasmtime version and settings, from its handshake),
/// and capped in all at <c>ModuleCacheMaxBytes</c>, least recently used first out. Wasmtime's deserialization
/// trusts its input completely, so every file carries an HMAC-SHA256 under a per-daemon secret
/// (<c>STATE/cache/secret</c>, 0600, never visible to a worker) and is checked before it is handed on: a file that
/// fails the check (tampered, truncated, another daemon's) is deleted and the module compiled again.
/// </summary>
internal sealed class CompiledModuleCache
{
    private const int MacBytes = 32;
    private const int SecretBytes = 32;
    private readonly string _directory;
    private readonly long _maxBytes;
    private readonly ILogger<CompiledModuleCache> _logger;
    private readonly Lazy<byte[]> _secret;
    private readonly Lock _trimming = new();

    public CompiledModuleCache(DaemonOptions options, ILogger<CompiledModuleCache> logger)
    {
        var root = Path.Combine(options.StateDir, "cache");
        _directory = Path.Combine(root, "modules");
        _maxBytes = options.ModuleCacheMaxBytes;
        _logger = logger;
        _secret = new Lazy<byte[]>(() => LoadOrCreateSecret(Path.Combine(root, "secret")));
    }

    /// <summary>False when <c>ModuleCacheMaxBytes</c> is 0: every load compiles.</summary>
    public bool Enabled => _maxBytes > 0;

    /// <summary>The authenticated compiled code for the module and engine of <paramref name="key"/>, or null.</summary>
    public byte[]? TryGet(ModuleKey key)
    {
        if (!Enabled) return null;
        var path = PathOf(key);
        byte[] file;
        try
        {
            var length = new FileInfo(path).Length;
            if (length > _maxBytes + MacBytes) return Discard(path, $"it is {length} bytes, over the cache's whole size");
            file = File.ReadAllBytes(path);
        }
        catch (FileNotFoundException)
        {
            return null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _logger.LogWarning("compiled-module cache: cannot read {Path}: {Problem}", path, e.Message);
            return null;
        }

        if (file.Length <= MacBytes) return Discard(path, "it is truncated");
        var payload = file.AsSpan(MacBytes);
        if (!CryptographicOperations.FixedTimeEquals(file.AsSpan(0, MacBytes), Mac(key, payload))) return Discard(path, "its HMAC does not match (tampered, truncated or written by another daemon)");
        TouchQuietly(path);
        return payload.ToArray();
    }

    /// <summary>Keeps <paramref name="compiled"/> for the module; failures are logged, never thrown (the cache is an optimisation).</summary>
    public void Put(ModuleKey key, ReadOnlySpan<byte> compiled)
    {
        if (!Enabled || compiled.Length + MacBytes > _maxBytes) return;
        var path = PathOf(key);
        var temporary = path + ".tmp-" + Guid.NewGuid().ToString("N");
        try
        {
            StateDirectory.CreatePrivate(_directory);
            using (var stream = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1, FileOptions.None))
            {
                stream.Write(Mac(key, compiled));
                stream.Write(compiled);
            }

            File.Move(temporary, path, overwrite: true);
            Trim();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _logger.LogWarning("compiled-module cache: cannot write {Path}: {Problem}", path, e.Message);
            DeleteQuietly(temporary);
        }
    }

    /// <summary>Forgets the entry (the worker's engine refused it although it authenticated: another Wasmtime build).</summary>
    public void Remove(ModuleKey key) => DeleteQuietly(PathOf(key));

    /// <summary>Deletes the least recently used entries until the cache fits its size.</summary>
    private void Trim()
    {
        lock (_trimming)
        {
            // Temporary files a crash left behind (a write in progress is younger than a minute).
            foreach (var leftover in new DirectoryInfo(_directory).GetFiles("*.tmp-*").Where(f => f.LastWriteTimeUtc < DateTime.UtcNow.AddMinutes(-1)))
                DeleteQuietly(leftover.FullName);
            var entries = new DirectoryInfo(_directory).GetFiles("*.cwasm").OrderByDescending(f => f.LastWriteTimeUtc).ToList();
            long total = 0;
            foreach (var entry in entries)
            {
                total += entry.Length;
                if (total <= _maxBytes) continue;
                DeleteQuietly(entry.FullName);
                _logger.LogInformation("compiled-module cache: evicted {Path} (the cache holds at most {Max} bytes)", entry.FullName, _maxBytes);
            }
        }
    }

    private byte[]? Discard(string path, string why)
    {
        _logger.LogWarning("compiled-module cache: discarded {Path}: {Why}; the module is compiled again", path, why);
        DeleteQuietly(path);
        return null;
    }

    private void DeleteQuietly(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _logger.LogWarning("compiled-module cache: cannot delete {Path}: {Problem}", path, e.Message);
        }
    }

    /// <summary>A hit counts as a use: the file's time stamp orders eviction.</summary>
    private static void TouchQuietly(string path)
    {
        try
        {
            File.SetLastWriteTimeUtc(path, DateTime.UtcNow);
        }
        catch (IOException)
        {
            // evicted meanwhile
        }
    }

    private string PathOf(ModuleKey key) => Path.Combine(_directory, Convert.ToHexStringLower(key.Hash) + ".cwasm");

    /// <summary>The MAC binds the payload to its key, so a valid file moved under another module's name fails too.</summary>
    private byte[] Mac(ModuleKey key, ReadOnlySpan<byte> payload)
    {
        using var hmac = IncrementalHash.CreateHMAC(HashAlgorithmName.SHA256, _secret.Value);
        hmac.AppendData(key.Hash);
        hmac.AppendData(payload);
        return hmac.GetHashAndReset();
    }

    private static byte[] LoadOrCreateSecret(string path)
    {
        if (File.Exists(path))
        {
            var existing = File.ReadAllBytes(path);
            if (existing.Length == SecretBytes) return existing;
        }

        StateDirectory.CreatePrivate(Path.GetDirectoryName(path)!);
        var secret = RandomNumberGenerator.GetBytes(SecretBytes);
        var temporary = path + ".tmp";
        File.WriteAllBytes(temporary, secret);
        File.SetUnixFileMode(temporary, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        File.Move(temporary, path, overwrite: true);
        return secret;
    }
}

/// <summary>
/// Names a module's compiled code: SHA-256 over the engine and the module's own SHA-256 (the engine string never
/// becomes a path). Computed once per load; hashing a module of up to 64 MiB is not free.
/// </summary>
internal readonly record struct ModuleKey(byte[] Hash)
{
    public static ModuleKey For(string engine, ReadOnlySpan<byte> module)
    {
        var engineBytes = Encoding.UTF8.GetBytes(engine + "\n");
        var material = new byte[engineBytes.Length + SHA256.HashSizeInBytes];
        engineBytes.CopyTo(material, 0);
        SHA256.HashData(module, material.AsSpan(engineBytes.Length));
        return new ModuleKey(SHA256.HashData(material));
    }
}
