namespace Connectias.Sandbox.Daemon.Tests;

/// <summary>
/// What a real worker holds, read from the host's /proc while it serves a plugin with storage: the threat model's
/// "compromised worker" lines (operator's guide) rest on these facts. The daemon runs as root here, so the worker
/// must have been switched to its own uid with no capability at all.
/// </summary>
[Collection("daemon")]
public sealed class WorkerConfinementTests(SharedDaemon shared)
{
    private const string HelloPermissions = ",\"permissions\":[\"storage\",\"system_info\"]";
    private readonly DaemonProcess _daemon = shared.Daemon;

    [Fact]
    public async Task A_worker_runs_as_its_own_uid_without_capabilities_under_its_syscall_filter_and_sees_only_its_own_files()
    {
        Assert.True(_daemon.Log.Contains("worker sandbox: bubblewrap", StringComparison.Ordinal), "these facts are the bubblewrap sandbox's; bubblewrap is installed by .ci/run");
        Assert.True(Environment.IsPrivilegedProcess, "the tests run as root, as CI does; the uid switch is a root daemon's");
        using var client = _daemon.Client();
        const string id = "com.test.confined";
        var info = await client.LoadAsync(_daemon.Package("hello", id, HelloPermissions));
        Assert.Equal("Hello, jail!", (await client.ExecuteAsync(id, "greet", "jail"u8.ToArray())).Output.ToStringUtf8()); // storage and all, it serves
        var pid = info.Pid;

        var status = File.ReadAllLines($"/proc/{pid}/status").Select(line => line.Split(':', 2)).ToDictionary(p => p[0], p => p[1].Trim());
        Assert.Equal(["65534", "65534", "65534", "65534"], status["Uid"].Split('\t', StringSplitOptions.RemoveEmptyEntries));
        Assert.Equal(["65534", "65534", "65534", "65534"], status["Gid"].Split('\t', StringSplitOptions.RemoveEmptyEntries));
        Assert.Equal("", status["Groups"]);
        foreach (var set in new[] { "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb" }) Assert.Equal("0000000000000000", status[set]);
        Assert.Equal("1", status["NoNewPrivs"]);
        Assert.Equal("2", status["Seccomp"]); // SECCOMP_MODE_FILTER
        // Every thread, not just the first: the filter was installed with TSYNC and threads started later inherit it.
        foreach (var task in Directory.GetDirectories($"/proc/{pid}/task"))
            Assert.Contains(File.ReadAllLines(Path.Combine(task, "status")), line => line == "Seccomp:\t2");

        // Its root: system libraries, its own binary, /proc, /dev, a private /tmp, its run and storage directories.
        var root = $"/proc/{pid}/root";
        foreach (var hidden in new[] { "etc/shadow", "etc/passwd", "root", "home", "var", "usr/bin/sh", "bin/sh", Path.Combine(_daemon.StateDir, "audit.jsonl").TrimStart('/') })
            Assert.False(Path.Exists(Path.Combine(root, hidden)), $"the worker can see /{hidden}");
        Assert.False(Directory.Exists(Path.Combine(root, _daemon.StateDir.TrimStart('/'), "keys")));
        Assert.True(Directory.Exists(Path.Combine(root, "usr/lib")));
        // One storage directory, its own: STATE/storage/ID, or the pool slot it was started with (renamed to that outside).
        var state = Path.Combine(root, _daemon.StateDir.TrimStart('/'));
        var seen = new[] { "storage", "storage-pool" }.Select(part => Path.Combine(state, part)).Where(Directory.Exists)
            .SelectMany(Directory.GetDirectories).Select(path => path[root.Length..]).ToList();
        var storage = Assert.Single(seen);
        Assert.Equal(["run", Path.GetFileName(Path.GetDirectoryName(storage))!], Directory.GetDirectories(state).Select(Path.GetFileName).Order());
        Assert.Single(Directory.GetDirectories(Path.Combine(state, "run", "plugins"))); // its own run directory only
        // Its mounts: everything but its run and storage directories, /tmp, /dev and /proc is read-only, the root included.
        var writable = File.ReadAllLines($"/proc/{pid}/mountinfo")
            .Select(line => line.Split(' '))
            .Where(fields => fields[5].Split(',').Contains("rw"))
            .Select(fields => fields[4])
            .ToList();
        // The device nodes bubblewrap binds (null, zero, full, random, urandom, tty) are devices, not storage.
        Assert.All(writable, mount => Assert.True(mount is "/tmp" or "/proc" or "/dev/pts" or "/dev/null" or "/dev/zero" or "/dev/full" or "/dev/random" or "/dev/urandom" or "/dev/tty"
            || mount == storage || mount.StartsWith(Path.Combine(_daemon.StateDir, "run"), StringComparison.Ordinal), $"{mount} is writable for the worker"));
        // /tmp is RAM no memory cap counts: 1 MiB at most (and /dev, with /dev/shm in it, is read-only, checked above).
        var tmp = File.ReadAllLines($"/proc/{pid}/mountinfo").Select(line => line.Split(' ')).Single(fields => fields[4] == "/tmp");
        Assert.Contains("size=1024k", tmp[^1].Split(','));

        // The files it wrote are its uid's, not root's.
        var hostStorage = Path.Combine(_daemon.StateDir, "storage", id);
        Assert.All(Directory.GetFileSystemEntries(hostStorage, "*", SearchOption.AllDirectories).Append(hostStorage), entry =>
            Assert.Equal(65534, FileOwner.Uid(entry)));
        await client.UnloadAsync(id);
    }
}
