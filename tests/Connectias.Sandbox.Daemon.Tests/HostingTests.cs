using System.Diagnostics;
using System.Text.Json;
using System.Text.RegularExpressions;
using Connectias.Sandbox.TestSupport;
using Connectias.Sandbox.V1;
using Grpc.Core;

namespace Connectias.Sandbox.Daemon.Tests;

/// <summary>The daemon as a host: start-up sweep, settings refused at start, retention, no leaks over load/unload cycles, log shape.</summary>
public partial class HostingTests
{
    [Fact]
    public async Task A_restart_after_SIGKILL_sweeps_leftover_workers_run_directories_and_sockets_and_says_so()
    {
        using var first = DaemonProcess.Start("{}");
        using (var client = first.Client()) await client.LoadAsync(first.Package("noop", "com.test.swept"));
        var runDirectory = Assert.Single(first.PluginRunDirectories("com.test.swept"));

        // A leftover that outlives its daemon (a worker stopped or started by hand ignores the parent-death
        // signal): any process whose command line names a worker socket under this state directory.
        var ghostDirectory = Path.Combine(first.RunDirectory, "plugins", "com.test.ghost-999");
        Directory.CreateDirectory(ghostDirectory);
        File.WriteAllText(Path.Combine(ghostDirectory, "worker.sock"), "");
        using var ghost = Process.Start("/bin/sh", ["-c", "sleep 300; true", "sh", "--socket", Path.Combine(ghostDirectory, "worker.sock")]);

        first.Signal("KILL");
        Assert.True(first.WaitForExit(TimeSpan.FromSeconds(30)));
        Assert.True(Directory.Exists(runDirectory)); // a SIGKILLed daemon cleans nothing up itself

        using var second = DaemonProcess.Start(new DaemonStartInfo { StateDir = first.StateDir });
        Assert.True(ghost.WaitForExit(10_000), "the leftover process survived the sweep");
        Assert.False(Directory.Exists(runDirectory));
        Assert.False(Directory.Exists(ghostDirectory));
        Assert.Contains($"start-up sweep: killed leftover worker {ghost.Id}", second.Log);
        // A worker removes its socket once the daemon connected; the ghost's is still there.
        Assert.Contains($"start-up sweep: removed leftover run directory {runDirectory}", second.Log);
        Assert.Contains($"start-up sweep: removed leftover run directory and worker socket {ghostDirectory}", second.Log);

        using var again = second.Client();
        Assert.Equal(PluginState.Ready, (await again.LoadAsync(second.Package("noop", "com.test.swept"))).State);
    }

    [Theory]
    [InlineData("--sandbox", "chroot", "Sandbox:Sandbox 'chroot' is not a sandbox mode")]
    [InlineData("--tcp", "localhost:x", "Sandbox:Tcp 'localhost:x' is not IP:PORT")]
    public void A_bad_flag_value_stops_the_daemon_before_it_touches_anything(string flag, string value, string expected)
    {
        var stateDir = Path.Combine(Path.GetTempPath(), $"connectias-never-{Guid.NewGuid():N}");
        var exit = DaemonProcess.RunToExit("--state-dir", stateDir, flag, value);
        Assert.Equal(2, exit.ExitCode);
        Assert.Contains(expected, exit.Error);
        Assert.False(Directory.Exists(stateDir));
    }

    [Theory]
    [InlineData("QueueLimit", "0", "Sandbox:QueueLimit is 0; it must be at least 1")]
    [InlineData("UnloadTimeoutMs", "-5", "Sandbox:UnloadTimeoutMs is -5; it must be at least 1")]
    [InlineData("CallGraceMs", "-1", "Sandbox:CallGraceMs is -1; it must be at least 0")]
    [InlineData("RestartsPerMinute", "6", "Sandbox:RestartsPerMinute is 6; it may be at most 5")]
    [InlineData("MaxPlugins", "lots", "Sandbox:MaxPlugins")]
    [InlineData("Policy", "", "Sandbox:Policy is empty")]
    [InlineData("Socket", " ", "Sandbox:Socket is empty")]
    public void A_bad_setting_stops_the_daemon_naming_it(string setting, string value, string expected)
    {
        var stateDir = Path.Combine(Path.GetTempPath(), $"connectias-never-{Guid.NewGuid():N}");
        var exit = DaemonProcess.RunToExit(["--state-dir", stateDir], [(setting, value)]);
        Assert.Equal(2, exit.ExitCode);
        Assert.Contains(expected, exit.Error);
        Assert.False(Directory.Exists(stateDir));
    }

    [Fact]
    public async Task Load_and_unload_cycles_leak_no_descriptors()
    {
        // The default retention keeps every unloaded plugin (and its last worker handle) reachable, so only
        // disposal, not the garbage collector, can close a stopped worker's pipes.
        using var daemon = DaemonProcess.Start("{}");
        using var client = daemon.Client();
        for (var i = 0; i < 3; i++) await Cycle(client, daemon, $"com.test.cycle{i}"); // warm up: the daemon's own lasting descriptors
        var before = Descriptors(daemon.Pid);
        for (var i = 3; i < 23; i++) await Cycle(client, daemon, $"com.test.cycle{i}");
        // Each worker holds two pipes (its stdout and stderr) and a socket: 20 undisposed workers show as 40 to 60
        // more. A loaded machine adds some noise (connections and pipes still closing), hence the margin and the wait.
        var after = Descriptors(daemon.Pid);
        for (var settle = Stopwatch.StartNew(); after - before > 16 && settle.Elapsed < TimeSpan.FromSeconds(10); after = Descriptors(daemon.Pid))
            await Task.Delay(100);
        Assert.True(after - before <= 16, $"{before} pipes and sockets before 20 load/unload cycles, {after} after; the daemon's processes: " + string.Join(", ", LifecycleTests.Descendants(daemon.Pid)));
        Assert.Equal(23, (await client.ListAsync()).Count(p => p.State == PluginState.Unloaded));
    }

    [Fact]
    public async Task A_thousand_load_and_unload_cycles_leave_descriptors_threads_memory_and_the_registry_flat()
    {
        using var daemon = DaemonProcess.Start("{}", ("UnloadedRetentionSeconds", "0"));
        using var client = daemon.Client();
        for (var i = 0; i < 20; i++) await Cycle(client, daemon, $"com.test.warmup{i}"); // the daemon's own lasting state
        var package = daemon.Package("noop", "com.test.cycled"); // one id, one package: a load costs no signing here
        var before = (Fds: Descriptors(daemon.Pid), Threads: ProcFs.Threads(daemon.Pid), Rss: ProcFs.RssBytes(daemon.Pid) / 1024);
        for (var i = 0; i < 1000; i++)
        {
            await client.LoadAsync(package);
            Assert.Empty((await client.ExecuteAsync("com.test.cycled", "run")).Output);
            await client.UnloadAsync("com.test.cycled");
        }

        // Counts with room for what is in flight (a warm worker starting, a connection closing) and the collector.
        var after = (Fds: Descriptors(daemon.Pid), Threads: ProcFs.Threads(daemon.Pid), Rss: ProcFs.RssBytes(daemon.Pid) / 1024);
        for (var settle = Stopwatch.StartNew(); (after.Fds - before.Fds > 16 || after.Threads - before.Threads > 8) && settle.Elapsed < TimeSpan.FromSeconds(10);
             after = (Descriptors(daemon.Pid), ProcFs.Threads(daemon.Pid), ProcFs.RssBytes(daemon.Pid) / 1024))
            await Task.Delay(100);
        Assert.True(after.Fds - before.Fds <= 16, $"pipes and sockets: {before.Fds} before 1000 cycles, {after.Fds} after");
        Assert.True(after.Threads - before.Threads <= 8, $"threads: {before.Threads} before 1000 cycles, {after.Threads} after");
        Assert.True(after.Rss - before.Rss <= 64 * 1024, $"RSS: {before.Rss} KiB before 1000 cycles, {after.Rss} KiB after");
        // Nothing kept per unloaded plugin (retention 0; they are forgotten at the next sweep).
        var listed = await client.ListAsync();
        for (var settle = Stopwatch.StartNew(); listed.Count > 0 && settle.Elapsed < TimeSpan.FromSeconds(10); listed = await client.ListAsync()) await Task.Delay(100);
        Assert.Empty(listed);
        Assert.Empty(daemon.PluginRunDirectories("com.test.cycled"));
    }

    [Fact]
    public async Task A_socket_in_an_existing_shared_directory_leaves_its_mode_alone_and_one_writable_by_others_is_refused()
    {
        var work = Directory.CreateTempSubdirectory("connectias-sockdir-").FullName;
        try
        {
            var sticky = Directory.CreateDirectory(Path.Combine(work, "sticky")).FullName;
            const UnixFileMode everyoneSticky = (UnixFileMode)0b1_111_111_111; // 1777, like /tmp
            File.SetUnixFileMode(sticky, everyoneSticky);
            using (var daemon = DaemonProcess.Start(new DaemonStartInfo { PolicyJson = "{}", Settings = [("Socket", Path.Combine(sticky, "sandboxd.sock"))] }))
            {
                using var client = Client.SandboxClient.Connect(Path.Combine(sticky, "sandboxd.sock"));
                Assert.Empty(await client.ListAsync());
                Assert.Equal(everyoneSticky, File.GetUnixFileMode(sticky)); // a 1777 directory once became 0700
                Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(sticky, "sandboxd.sock")));
            }

            var open = Directory.CreateDirectory(Path.Combine(work, "open")).FullName;
            File.SetUnixFileMode(open, (UnixFileMode)0b111_111_111); // 0777: anyone could replace the socket
            var exit = DaemonProcess.RunToExit(["--state-dir", Path.Combine(work, "state"), "--socket", Path.Combine(open, "sandboxd.sock")], []);
            Assert.Equal(1, exit.ExitCode);
            Assert.Contains("writable by others without the sticky bit", exit.Error);
            Assert.Equal((UnixFileMode)0b111_111_111, File.GetUnixFileMode(open));
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }

    [Fact]
    public async Task Unloaded_plugins_are_forgotten_after_the_retention()
    {
        using var daemon = DaemonProcess.Start("{}", ("UnloadedRetentionSeconds", "0"));
        using var client = daemon.Client();
        await Cycle(client, daemon, "com.test.forgotten");
        await ApiErrorTests.Refused(() => client.GetAsync("com.test.forgotten"), StatusCode.NotFound, "PLUGIN_NOT_FOUND");
        Assert.Empty(await client.ListAsync());
    }

    private static async Task Cycle(Client.SandboxClient client, DaemonProcess daemon, string id)
    {
        await client.LoadAsync(daemon.Package("noop", id));
        Assert.Empty((await client.ExecuteAsync(id, "run")).Output);
        await client.UnloadAsync(id);
    }

    [Fact]
    public async Task The_log_is_json_lines_with_a_clean_timestamp_a_category_per_component_and_one_per_plugin()
    {
        using var daemon = DaemonProcess.Start("{}");
        using (var client = daemon.Client())
        {
            await client.LoadAsync(daemon.Package("hello", "com.test.logs", ",\"permissions\":[\"storage\",\"system_info\"]"));
            await client.ExecuteAsync("com.test.logs", "greet", "Ada"u8.ToArray());
        }

        var clock = Stopwatch.StartNew();
        while (!daemon.Log.Contains("hello plugin initialised", StringComparison.Ordinal) && clock.Elapsed < TimeSpan.FromSeconds(10)) await Task.Delay(20);
        var lines = daemon.Log.Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(line => line.StartsWith('{')).Select(line => JsonDocument.Parse(line).RootElement).ToList();
        Assert.NotEmpty(lines);
        Assert.All(lines, line => Assert.Matches(Timestamp(), line.GetProperty("Timestamp").GetString()!));
        var categories = lines.Select(line => line.GetProperty("Category").GetString()!).ToHashSet();
        Assert.Contains("Connectias.Sandbox.Daemon.Workers.WorkerLauncher", categories);
        Assert.Contains("Connectias.Sandbox.Daemon.Plugins.PluginLoader", categories);
        Assert.Contains(lines, line => line.GetProperty("Category").GetString() == "Connectias.Sandbox.Plugin.com.test.logs" &&
                                       line.GetProperty("Message").GetString()!.Contains("hello plugin initialised", StringComparison.Ordinal));
    }

    /// <summary>The daemon's pipes, sockets and anonymous inodes: what a worker left undisposed would hold (not the assemblies the runtime maps as it goes).</summary>
    private static int Descriptors(int pid) => Directory.GetFileSystemEntries($"/proc/{pid}/fd")
        .Select(fd => new FileInfo(fd).LinkTarget ?? "")
        .Count(target => target.StartsWith("pipe:", StringComparison.Ordinal) || target.StartsWith("socket:", StringComparison.Ordinal) || target.StartsWith("anon_inode:", StringComparison.Ordinal));

    [GeneratedRegex(@"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")]
    private static partial Regex Timestamp();
}
