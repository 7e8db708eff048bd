using System.Diagnostics;
using Connectias.Sandbox.Audit;
using Connectias.Sandbox.V1;
using Grpc.Core;

namespace Connectias.Sandbox.Daemon.Tests;

/// <summary>Tests that need a daemon of their own: limits of the daemon itself, killing it, stopping it, its audit log.</summary>
public class DedicatedDaemonTests
{
    private const string SlowPolicy = """{ "plugins": { "com.test.slow": { "limits": { "fuel_per_call": 1000000000000, "timeout_ms": 1500 } } } }""";

    [Fact]
    public async Task QUEUE_FULL_beyond_the_queue_limit_and_queued_calls_fail_when_the_plugin_is_terminated()
    {
        using var daemon = DaemonProcess.Start(SlowPolicy, ("QueueLimit", "1"));
        using var client = daemon.Client();
        await client.LoadAsync(daemon.Package("infinite_loop", "com.test.slow", ",\"resource_limits\":{\"fuel_per_call\":1000000000000}"));
        var idleCpu = (await client.GetAsync("com.test.slow")).Usage.WorkerCpuSeconds;
        var running = client.ExecuteAsync("com.test.slow", "run");
        // The call is counted when it ends; that it runs shows in the worker's CPU time (the monitor samples /proc).
        var clock = Stopwatch.StartNew();
        while ((await client.GetAsync("com.test.slow")).Usage.WorkerCpuSeconds < idleCpu + 0.1 && clock.Elapsed < TimeSpan.FromSeconds(10)) await Task.Delay(10);
        var queued = client.ExecuteAsync("com.test.slow", "run");
        await Task.Delay(200);
        var error = await ApiErrorTests.Refused(() => client.ExecuteAsync("com.test.slow", "run"), StatusCode.ResourceExhausted, "QUEUE_FULL", "com.test.slow");
        Assert.Equal("1", error.Metadata["limit"]);

        await ApiErrorTests.Refused(() => running, StatusCode.DeadlineExceeded, "TIMEOUT", "com.test.slow");
        var queuedError = await ApiErrorTests.Refused(() => queued, StatusCode.Unavailable, "PLUGIN_CRASHED");
        Assert.Contains("TIMEOUT", queuedError.Message);
    }

    [Fact]
    public async Task QUEUE_FULL_beyond_the_bytes_the_calls_waiting_for_a_plugin_may_hold()
    {
        using var daemon = DaemonProcess.Start(SlowPolicy, ("QueueBytesPerPlugin", "2500"));
        using var client = daemon.Client();
        await client.LoadAsync(daemon.Package("infinite_loop", "com.test.slow", ",\"resource_limits\":{\"fuel_per_call\":1000000000000}"));
        var kilobyte = new byte[1024];
        // Three calls at once, while the first to arrive spins for its 1.5 s: whatever their order, two fit in the
        // 2500 bytes (the running call's arguments count too) and the third does not.
        var outcomes = await Task.WhenAll(Enumerable.Range(0, 3).Select(_ => Record.ExceptionAsync(() => client.ExecuteAsync("com.test.slow", "run", kilobyte))));
        var refused = Assert.Single(outcomes.OfType<SandboxException>(), e => e.Reason == ErrorReason.QueueFull);
        Assert.Contains("Sandbox:QueueBytesPerPlugin", refused.Message);
        Assert.All(outcomes, outcome => Assert.IsType<SandboxException>(outcome)); // the other two ran out of time or were stopped with the plugin
        // The daemon goes on serving (that the bytes are given back is CallQueueBytesTests' to show).
        await client.LoadAsync(daemon.Package("noop", "com.test.after-bytes"));
        Assert.Empty((await client.ExecuteAsync("com.test.after-bytes", "run", kilobyte)).Output);
    }

    [Fact]
    public async Task RESOURCE_EXHAUSTED_when_the_daemon_holds_its_maximum_of_plugins()
    {
        using var daemon = DaemonProcess.Start("{}", ("MaxPlugins", "1"));
        using var client = daemon.Client();
        await client.LoadAsync(daemon.Package("noop", "com.test.first"));
        var error = await ApiErrorTests.Refused(() => client.LoadAsync(daemon.Package("noop", "com.test.second")), StatusCode.ResourceExhausted, "RESOURCE_EXHAUSTED", "com.test.second");
        Assert.Equal("1", error.Metadata["limit"]);
    }

    [Fact]
    public async Task A_SIGKILLed_daemon_leaves_no_worker_alive_two_seconds_later()
    {
        var daemon = DaemonProcess.Start("{}");
        int[] workers;
        using (var client = daemon.Client())
        {
            await client.LoadAsync(daemon.Package("noop", "com.test.orphan1"));
            await client.LoadAsync(daemon.Package("noop", "com.test.orphan2"));
            workers = LifecycleTests.Descendants(daemon.Pid).Skip(1).ToArray();
        }

        Assert.True(workers.Length >= 2);
        daemon.Signal("KILL");
        var clock = Stopwatch.StartNew();
        while (workers.Any(LifecycleTests.IsAlive) && clock.ElapsedMilliseconds < 5000) await Task.Delay(20);
        Assert.All(workers, pid => Assert.False(LifecycleTests.IsAlive(pid), $"worker {pid} outlived the daemon"));
        Assert.True(clock.ElapsedMilliseconds < 2000, $"the workers took {clock.ElapsedMilliseconds} ms to die");
        daemon.Dispose();
    }

    [Fact]
    public async Task SIGTERM_unloads_everything_and_exits_0()
    {
        using var daemon = DaemonProcess.Start("{}");
        int[] workers;
        using (var client = daemon.Client())
        {
            await client.LoadAsync(daemon.Package("hello", "com.test.graceful", ",\"permissions\":[\"storage\",\"system_info\"]"));
            await client.LoadAsync(daemon.Package("noop", "com.test.graceful2"));
            workers = LifecycleTests.Descendants(daemon.Pid).Skip(1).ToArray();
        }

        daemon.Signal("TERM");
        Assert.True(daemon.WaitForExit(TimeSpan.FromSeconds(30)));
        Assert.Equal(0, daemon.ExitCode);
        Assert.All(workers, pid => Assert.False(LifecycleTests.IsAlive(pid)));
        Assert.False(File.Exists(daemon.SocketPath));
        var lines = File.ReadAllLines(daemon.AuditPath);
        Assert.Contains("\"event\":\"DAEMON_STOP\"", lines[^1]);
        Assert.Equal(2, lines.Count(line => line.Contains("\"event\":\"CLEANUP_REPORT\"")));
    }

    [Fact]
    public async Task The_audit_chain_verifies_after_a_full_scenario_and_breaks_when_a_record_is_edited_removed_or_reordered()
    {
        string auditCopy;
        using (var daemon = DaemonProcess.Start("{}"))
        {
            using (var client = daemon.Client())
            {
                await client.LoadAsync(daemon.Package("hello", "com.test.audited", ",\"permissions\":[\"storage\",\"system_info\"]"));
                await Assert.ThrowsAsync<SandboxException>(() => client.ExecuteAsync("com.test.audited", "fail"));
                await Assert.ThrowsAsync<SandboxException>(() => client.LoadAsync(daemon.Package("hello", "com.test.unsigned", sign: false)));
                await client.LoadAsync(daemon.Package("unreachable", "com.test.trapped"));
                await Assert.ThrowsAsync<SandboxException>(() => client.ExecuteAsync("com.test.trapped", "run"));
                await client.UnloadAsync("com.test.audited");
            }

            daemon.Signal("TERM");
            Assert.True(daemon.WaitForExit(TimeSpan.FromSeconds(30)));
            var result = AuditVerifier.Verify(daemon.AuditPath);
            Assert.True(result.Intact, result.Problem);
            var events = daemon.AuditRecords().Select(record => record.Event).ToList();
            foreach (var expected in new[] { "DAEMON_START", "PLUGIN_LOAD", "PERMISSION_GRANT", "PLUGIN_EXECUTE_FAILED", "LOAD_REJECTED", "PLUGIN_TERMINATED", "PLUGIN_UNLOAD", "CLEANUP_REPORT", "DAEMON_STOP" })
                Assert.Contains(expected, events);

            // The CLI agrees, with exit code 0.
            var output = new StringWriter();
            Assert.Equal(0, Cli.CliApp.Run(["audit", "verify", "--state-dir", daemon.StateDir], output, new StringWriter()));
            Assert.Contains($"intact: {events.Count} records", output.ToString());
            auditCopy = File.ReadAllText(daemon.AuditPath);
        }

        var lines = auditCopy.TrimEnd('\n').Split('\n');
        AssertBroken(lines.Select((line, i) => i == 3 ? line.Replace("\"event\":\"", "\"event\":\"X") : line), 4, "edited");
        AssertBroken(lines.Where((_, i) => i != 2), 3, "removed");
        AssertBroken(lines.Select((line, i) => i == 2 ? lines[3] : i == 3 ? lines[2] : line), 3, "reordered");
        AssertBroken(lines.Take(lines.Length - 1).Append(lines[^1].Replace("DAEMON_STOP", "DAEMON_STAR")), lines.Length, "edited");
    }

    private static void AssertBroken(IEnumerable<string> lines, int badLine, string problem)
    {
        var directory = Directory.CreateTempSubdirectory("connectias-audit-").FullName;
        Directory.CreateDirectory(Path.Combine(directory, "audit"));
        File.WriteAllText(Path.Combine(directory, "audit", AuditLog.FileName), string.Join('\n', lines) + "\n");
        var result = AuditVerifier.Verify(Path.Combine(directory, "audit", AuditLog.FileName));
        Assert.False(result.Intact);
        Assert.Equal(badLine, result.BadLine);
        Assert.Contains(problem, result.Problem);

        var error = new StringWriter();
        Assert.Equal(1, Cli.CliApp.Run(["audit", "verify", "--state-dir", directory], new StringWriter(), error));
        Assert.Contains($"line {badLine}", error.ToString());
        Directory.Delete(directory, recursive: true);
    }
}
