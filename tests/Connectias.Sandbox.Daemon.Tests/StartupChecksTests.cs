using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Connectias.Sandbox.TestSupport;
using Grpc.Health.V1;

namespace Connectias.Sandbox.Daemon.Tests;

/// <summary>Configuration mistakes stop the daemon at start; a broken audit chain is reported and visible; systemd hears when it is ready.</summary>
public class StartupChecksTests
{
    [Fact]
    public void An_unknown_Sandbox_setting_from_the_environment_stops_the_daemon_naming_it()
    {
        var state = Path.Combine(Path.GetTempPath(), $"connectias-never-{Guid.NewGuid():N}");
        var exit = DaemonProcess.RunToExit(["--state-dir", state], [("QueueLimt", "5")]);
        Assert.Equal(2, exit.ExitCode);
        Assert.Contains("unknown setting Sandbox:QueueLimt (from an environment variable Sandbox__...)", exit.Error);
        Assert.Contains("QueueLimit", exit.Error); // the known ones are listed, the right spelling among them
        Assert.False(Directory.Exists(state));
    }

    [Fact]
    public void A_trust_directory_that_does_not_exist_stops_the_daemon()
    {
        var state = Directory.CreateTempSubdirectory("connectias-notrust-").FullName;
        try
        {
            var missing = Path.Combine(state, "no-such-trust");
            var exit = DaemonProcess.RunToExit("--state-dir", state, "--trust-dir", missing);
            Assert.Equal(1, exit.ExitCode);
            Assert.Contains($"Sandbox:TrustDir '{missing}' does not exist", exit.Error);
            Assert.False(Directory.Exists(missing));
        }
        finally
        {
            Directory.Delete(state, recursive: true);
        }
    }

    [Fact]
    public async Task An_audit_chain_broken_before_start_is_logged_recorded_and_seen_in_health_while_the_daemon_serves()
    {
        string stateDir;
        using (var first = DaemonProcess.Start("{}"))
        {
            using (var client = first.Client())
            {
                await client.LoadAsync(first.Package("noop", "com.test.audited"));
                await client.UnloadAsync("com.test.audited");
            }

            stateDir = first.StateDir;
            first.Signal("TERM");
            Assert.True(first.WaitForExit(TimeSpan.FromSeconds(30)));

            // Someone edits the third record behind the daemon's back.
            var lines = File.ReadAllLines(first.AuditPath);
            lines[2] = lines[2].Replace("\"plugin_id\":\"com.test.audited\"", "\"plugin_id\":\"com.test.innocent\"", StringComparison.Ordinal);
            File.WriteAllLines(first.AuditPath, lines);

            using var second = DaemonProcess.Start(new DaemonStartInfo { StateDir = stateDir });
            Assert.Contains("audit log hash chain broken at line 3", second.Log);
            var record = Assert.Single(second.AuditRecords(), r => r.Event == "AUDIT_CHAIN_BROKEN");
            Assert.Equal(3, record.Details.GetProperty("first_bad_line").GetInt64());

            using var channel = Contracts.UnixSocketChannel.Create(second.SocketPath);
            var health = new Health.HealthClient(channel);
            Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, (await health.CheckAsync(new HealthCheckRequest())).Status);
            Assert.Equal(HealthCheckResponse.Types.ServingStatus.NotServing,
                (await health.CheckAsync(new HealthCheckRequest { Service = "connectias.sandbox.v1.AuditLog" })).Status);
            using var again = second.Client();
            Assert.Equal(V1.PluginState.Ready, (await again.LoadAsync(second.Package("noop", "com.test.after"))).State); // still serving
        }
    }

    [Fact]
    public async Task A_record_left_unfinished_by_a_killed_daemon_is_cut_off_at_restart_said_in_the_log_and_recorded_and_the_chain_verifies()
    {
        using var first = DaemonProcess.Start("{}");
        using (var client = first.Client()) await client.LoadAsync(first.Package("noop", "com.test.torn"));
        first.Signal("KILL");
        Assert.True(first.WaitForExit(TimeSpan.FromSeconds(30)));
        var whole = File.ReadAllBytes(first.AuditPath);
        // What a crash (or a full disk under an older daemon) leaves: the start of a record, no newline.
        var torn = "{\"seq\":99,\"ts\":\"2026-11-26T10:00:00.000000Z\",\"event\":\"PLUGIN_UNL"u8.ToArray();
        using (var file = new FileStream(first.AuditPath, FileMode.Append)) file.Write(torn);
        Assert.Equal(1, Cli.CliApp.Run(["audit", "verify", "--state-dir", first.StateDir], new StringWriter(), new StringWriter()));

        using var second = DaemonProcess.Start(new DaemonStartInfo { StateDir = first.StateDir });
        Assert.Contains($"ended inside a record (a write cut short by a crash or a full disk): cut off its last {torn.Length} bytes", second.Log);
        Assert.DoesNotContain("hash chain broken", second.Log);
        Assert.Equal(whole, File.ReadAllBytes(second.AuditPath)[..whole.Length]);
        var recovered = Assert.Single(second.AuditRecords(), r => r.Event == "AUDIT_LOG_RECOVERED").Details;
        Assert.Equal(torn.Length, recovered.GetProperty("bytes_dropped").GetInt32());
        Assert.Equal(whole.Length, recovered.GetProperty("kept_bytes").GetInt64());
        Assert.Equal(0, Cli.CliApp.Run(["audit", "verify", "--state-dir", second.StateDir], new StringWriter(), new StringWriter()));
        using var channel = Contracts.UnixSocketChannel.Create(second.SocketPath);
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving,
            (await new Health.HealthClient(channel).CheckAsync(new HealthCheckRequest { Service = "connectias.sandbox.v1.AuditLog" })).Status);
    }

    [Fact]
    public async Task An_intact_audit_log_is_SERVING_in_health()
    {
        using var daemon = DaemonProcess.Start("{}");
        using var channel = Contracts.UnixSocketChannel.Create(daemon.SocketPath);
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving,
            (await new Health.HealthClient(channel).CheckAsync(new HealthCheckRequest { Service = "connectias.sandbox.v1.AuditLog" })).Status);
    }

    [Fact]
    public async Task Under_systemd_the_daemon_notifies_READY_once_its_socket_listens()
    {
        // systemd is recognised as the parent process's name: a shell copied to a file named systemd plays it,
        // and NOTIFY_SOCKET is a datagram socket this test reads, as systemd's would be.
        var work = Directory.CreateTempSubdirectory("connectias-systemd-").FullName;
        var systemd = Path.Combine(work, "systemd");
        File.Copy("/bin/sh", systemd);
        File.SetUnixFileMode(systemd, UnixFileMode.UserRead | UnixFileMode.UserExecute);
        var notifyPath = Path.Combine(work, "notify.sock");
        using var notify = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        notify.Bind(new UnixDomainSocketEndPoint(notifyPath));
        var state = Path.Combine(work, "state");
        var start = new ProcessStartInfo(systemd) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in new[] { "-c", "dotnet \"$0\" --state-dir \"$1\" --no-dev-key --sandbox none; true", DaemonProcess.Dll, state }) start.ArgumentList.Add(arg);
        start.Environment["NOTIFY_SOCKET"] = notifyPath;
        using var parent = Process.Start(start)!;
        var output = parent.StandardOutput.ReadToEndAsync();
        try
        {
            var buffer = new byte[256];
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            var received = await notify.ReceiveAsync(buffer, SocketFlags.None, timeout.Token);
            Assert.Contains("READY=1", Encoding.UTF8.GetString(buffer, 0, received));
            Assert.True(File.Exists(Path.Combine(state, "run", "sandboxd.sock"))); // it listens by the time it says so
        }
        finally
        {
            foreach (var child in LifecycleTests.Descendants(parent.Id).Skip(1)) LifecycleTests.Kill(child);
            parent.WaitForExit(30_000);
            await output;
            Directory.Delete(work, recursive: true);
        }
    }
}
