using System.Diagnostics;
using System.Text.Json;
using System.Text.RegularExpressions;
using Connectias.Sandbox.FakeWorker;
using Connectias.Sandbox.V1;
using Grpc.Core;

namespace Connectias.Sandbox.Daemon.Tests;

/// <summary>
/// Workers that break the worker protocol, played by the fake worker: each gets its SPEC reason, leaves no
/// process and no run directory behind, and the daemon goes on serving real plugins. The tests of one class run
/// one at a time, so they share a daemon and switch its worker between loads.
/// </summary>
public sealed class MisbehavingWorkerTests(FakeWorkerDaemon shared) : IClassFixture<FakeWorkerDaemon>
{
    private const string HelloPermissions = ",\"permissions\":[\"storage\",\"system_info\"]";

    /// <summary>Long enough for a loaded 2-core machine, short enough that a daemon that never acts fails the test.</summary>
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(15);

    [Fact]
    public async Task A_malformed_handshake_fails_the_load_with_INIT_FAILED()
    {
        var error = await LoadRefused(shared, Behaviour.BadHandshake, StatusCode.FailedPrecondition, ErrorReason.InitFailed);
        Assert.Contains("handshake", error.Message, StringComparison.OrdinalIgnoreCase);
        await AssertNotLoaded(shared, Behaviour.BadHandshake);
        await AssertCleanAndServing(shared, Behaviour.BadHandshake);
    }

    [Fact]
    public async Task No_handshake_within_the_start_timeout_fails_the_load_with_RESOURCE_EXHAUSTED()
    {
        using var daemon = FakeWorkerDaemon.Start(("WorkerStartTimeoutMs", "1500"));
        var clock = Stopwatch.StartNew();
        var error = await LoadRefused(daemon, Behaviour.NoHandshake, StatusCode.ResourceExhausted, ErrorReason.ResourceExhausted);
        Assert.InRange(clock.Elapsed, TimeSpan.FromMilliseconds(1500), Patience);
        Assert.Contains("handshake", error.Message, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("within", error.Message, StringComparison.OrdinalIgnoreCase);
        await AssertNotLoaded(daemon, Behaviour.NoHandshake);
        await AssertCleanAndServing(daemon, Behaviour.NoHandshake);
    }

    [Fact]
    public async Task A_worker_that_exits_before_its_handshake_fails_the_load_with_INIT_FAILED()
    {
        await LoadRefused(shared, Behaviour.ExitBeforeHandshake, StatusCode.FailedPrecondition, ErrorReason.InitFailed);
        await AssertNotLoaded(shared, Behaviour.ExitBeforeHandshake);
        await AssertCleanAndServing(shared, Behaviour.ExitBeforeHandshake);
    }

    [Fact]
    public async Task A_worker_that_exits_during_Load_fails_the_load_with_INIT_FAILED()
    {
        await LoadRefused(shared, Behaviour.ExitDuringLoad, StatusCode.FailedPrecondition, ErrorReason.InitFailed);
        await AssertNotLoaded(shared, Behaviour.ExitDuringLoad);
        await AssertCleanAndServing(shared, Behaviour.ExitDuringLoad);
    }

    [Theory]
    [InlineData(Behaviour.StrayStdout, "unexpected output on stdout")]
    [InlineData(Behaviour.UnsolicitedReply, "a reply (id")]
    public async Task A_worker_that_breaks_the_protocol_after_loading_is_terminated_as_a_SECURITY_VIOLATION_and_audited(string behaviour, string how)
    {
        var id = IdFor(behaviour);
        shared.UseWorker(behaviour);
        using var client = shared.Daemon.Client();
        Assert.Equal(PluginState.Ready, (await client.LoadAsync(shared.Daemon.Package("noop", id))).State);

        var info = await ApiErrorTests.WaitForState(client, id, PluginState.Terminated);
        Assert.Equal(PluginState.Terminated, info.State);
        Assert.Equal("SECURITY_VIOLATION", info.StateReason);
        Assert.Contains("broke the worker protocol", info.StateMessage);
        Assert.Contains(how, info.StateMessage);
        Assert.True(await Eventually(() => AuditEvents(shared.Daemon).Contains(("SECURITY_VIOLATION", id))),
            $"no SECURITY_VIOLATION record for {id} in {shared.Daemon.AuditPath}");
        await AssertCleanAndServing(shared, behaviour);
    }

    [Fact]
    public async Task A_worker_its_syscall_filter_kills_in_a_call_is_a_SECURITY_VIOLATION_audited_and_terminated()
    {
        // socket(2) from the worker's native code, as plugin code that escaped WebAssembly would make it, under the real filter.
        var id = IdFor(Behaviour.ForbiddenCallInExecute);
        shared.UseWorker(Behaviour.ForbiddenCallInExecute);
        using var client = shared.Daemon.Client();
        Assert.Equal(PluginState.Ready, (await client.LoadAsync(shared.Daemon.Package("noop", id))).State);

        var error = await ApiErrorTests.Refused(() => client.ExecuteAsync(id, "run"), StatusCode.PermissionDenied, "SECURITY_VIOLATION", id);
        Assert.Contains("system call outside its allow-list", error.Message);
        var info = await ApiErrorTests.WaitForState(client, id, PluginState.Terminated);
        Assert.Equal("SECURITY_VIOLATION", info.StateReason);
        Assert.True(await Eventually(() => AuditEvents(shared.Daemon).Contains(("SECURITY_VIOLATION", id))), $"no SECURITY_VIOLATION record for {id}");
        Assert.DoesNotContain("the filter let it through", shared.Daemon.Log);
        await AssertCleanAndServing(shared, Behaviour.ForbiddenCallInExecute);
    }

    [Fact]
    public async Task A_worker_its_syscall_filter_kills_while_loading_fails_the_load_with_SECURITY_VIOLATION_audited()
    {
        var error = await LoadRefused(shared, Behaviour.ForbiddenCallInLoad, StatusCode.PermissionDenied, ErrorReason.SecurityViolation);
        Assert.Contains("system call outside its allow-list", error.Message);
        Assert.Contains(shared.Daemon.AuditRecords(), r => r.Event == "SECURITY_VIOLATION" && r.PluginId == IdFor(Behaviour.ForbiddenCallInLoad));
        await AssertNotLoaded(shared, Behaviour.ForbiddenCallInLoad);
        await AssertCleanAndServing(shared, Behaviour.ForbiddenCallInLoad);
    }

    [Fact]
    public async Task A_worker_that_outgrows_its_cap_while_loading_is_stopped_by_the_monitor_with_RESOURCE_EXHAUSTED()
    {
        // Cap: 64 MiB of memory_bytes + 64 MiB allowance; the worker makes 256 MiB resident and never answers the Load.
        using var daemon = FakeWorkerDaemon.Start(("WorkerRssAllowanceBytes", "67108864"), ("MonitorIntervalMs", "100"));
        var id = IdFor(Behaviour.BloatInLoad);
        daemon.UseWorker(Behaviour.BloatInLoad);
        using var client = daemon.Daemon.Client();
        var error = await ApiErrorTests.Refused(() => client.LoadAsync(daemon.Daemon.Package("noop", id, ",\"resource_limits\":{\"memory_bytes\":67108864}")),
            StatusCode.ResourceExhausted, "RESOURCE_EXHAUSTED", id);
        Assert.Contains("used while loading", error.Message);
        Assert.Equal((128L * 1024 * 1024).ToString(System.Globalization.CultureInfo.InvariantCulture), error.Metadata["limit"]);
        Assert.Contains(daemon.Daemon.AuditRecords(), r => r.Event == "RESOURCE_EXHAUSTION" && r.PluginId == id);
        await AssertNotLoaded(daemon, Behaviour.BloatInLoad);
        await AssertCleanAndServing(daemon, Behaviour.BloatInLoad);
    }

    [Fact]
    public async Task A_worker_that_dies_in_a_call_fails_it_with_PLUGIN_CRASHED_and_the_plugin_is_CRASHED()
    {
        var id = IdFor(Behaviour.CrashMidCall);
        shared.UseWorker(Behaviour.CrashMidCall);
        using var client = shared.Daemon.Client();
        await client.LoadAsync(shared.Daemon.Package("noop", id));

        var error = await ApiErrorTests.Refused(() => client.ExecuteAsync(id, "run"), StatusCode.Unavailable, "PLUGIN_CRASHED", id);
        Assert.Equal(ErrorReason.PluginCrashed, error.Reason);
        var info = await ApiErrorTests.WaitForState(client, id, PluginState.Crashed);
        Assert.Equal(PluginState.Crashed, info.State);
        Assert.Equal("PLUGIN_CRASHED", info.StateReason);
        await AssertCleanAndServing(shared, Behaviour.CrashMidCall);
    }

    [Fact]
    public async Task A_worker_that_hangs_in_a_call_is_killed_after_the_timeout_and_its_grace_with_TIMEOUT()
    {
        var id = IdFor(Behaviour.HangMidCall);
        shared.UseWorker(Behaviour.HangMidCall);
        using var client = shared.Daemon.Client();
        Assert.Equal(1000UL, (await client.LoadAsync(shared.Daemon.Package("noop", id))).Limits.TimeoutMs);

        var clock = Stopwatch.StartNew();
        var error = await ApiErrorTests.Refused(() => client.ExecuteAsync(id, "run"), StatusCode.DeadlineExceeded, "TIMEOUT", id);
        Assert.InRange(clock.Elapsed, TimeSpan.FromSeconds(1), Patience);
        Assert.Equal(ErrorReason.Timeout, error.Reason);
        var info = await ApiErrorTests.WaitForState(client, id, PluginState.Terminated);
        Assert.Equal(PluginState.Terminated, info.State);
        Assert.Equal("TIMEOUT", info.StateReason);
        await AssertCleanAndServing(shared, Behaviour.HangMidCall);
    }

    [Fact]
    public async Task A_frame_over_the_size_limit_fails_the_call_with_SECURITY_VIOLATION_and_is_not_read()
    {
        var id = IdFor(Behaviour.HugeFrame);
        shared.UseWorker(Behaviour.HugeFrame);
        using var client = shared.Daemon.Client();
        await client.LoadAsync(shared.Daemon.Package("noop", id));

        var error = await ApiErrorTests.Refused(() => client.ExecuteAsync(id, "run"), StatusCode.PermissionDenied, "SECURITY_VIOLATION", id);
        Assert.Contains("limit", error.Message);
        var info = await ApiErrorTests.WaitForState(client, id, PluginState.Terminated);
        Assert.Equal("SECURITY_VIOLATION", info.StateReason);
        await AssertCleanAndServing(shared, Behaviour.HugeFrame);
    }

    [Fact]
    public async Task A_load_that_overruns_its_time_fails_with_TIMEOUT_and_its_worker_is_killed()
    {
        using var daemon = FakeWorkerDaemon.Start(("WorkerLoadGraceMs", "0"), ("CallGraceMs", "0"));
        var clock = Stopwatch.StartNew();
        var error = await LoadRefused(daemon, Behaviour.HangInLoad, StatusCode.DeadlineExceeded, ErrorReason.Timeout);
        Assert.InRange(clock.Elapsed, TimeSpan.FromSeconds(1), Patience); // the noop's timeout_ms of 1000 and no grace
        Assert.Contains("overran", error.Message);
        Assert.Equal("1000", error.Metadata["limit"]);
        await AssertNotLoaded(daemon, Behaviour.HangInLoad);
        await AssertCleanAndServing(daemon, Behaviour.HangInLoad);
    }

    [Fact]
    public async Task A_256_MiB_line_on_a_workers_stderr_is_cut_and_costs_the_daemon_no_memory_to_speak_of()
    {
        using var daemon = FakeWorkerDaemon.Start();
        var id = IdFor(Behaviour.HugeStderrLine);
        daemon.UseWorker(Behaviour.HugeStderrLine);
        using var client = daemon.Daemon.Client();
        await client.LoadAsync(daemon.Daemon.Package("noop", id));
        Assert.True(await Eventually(() => daemon.Daemon.Log.Contains($"a log line of {Behaviour.HugeLineBytes} characters, cut", StringComparison.Ordinal)));
        Assert.Empty((await client.ExecuteAsync(id, "run")).Output); // the fake worker echoes the (empty) args

        // The daemon's peak resident memory, a count: holding the line would take more than 512 MiB.
        var peakKiB = ProcFs.PeakRssBytes(daemon.Daemon.Pid) / 1024;
        Assert.True(peakKiB < 400 * 1024, $"the daemon's peak RSS was {peakKiB} KiB");
        await client.UnloadAsync(id);
        await AssertCleanAndServing(daemon, Behaviour.HugeStderrLine);
    }

    [Fact]
    public async Task A_worker_that_floods_its_stderr_gets_the_daemons_budget_of_lines_and_one_summary()
    {
        // The smallest backstop the settings allow: three times the plugins' 100 lines a minute.
        using var daemon = FakeWorkerDaemon.Start(("PluginLogLinesPerCall", "10"), ("PluginLogLinesPerMinute", "100"), ("WorkerLogLinesPerMinute", "300"));
        var id = IdFor(Behaviour.StderrFlood);
        daemon.UseWorker(Behaviour.StderrFlood);
        using var client = daemon.Daemon.Client();
        await client.LoadAsync(daemon.Daemon.Package("noop", id));
        Assert.Empty((await client.ExecuteAsync(id, "run")).Output); // the daemon serves the flooding worker's plugin
        await client.UnloadAsync(id); // the stream ends: the summary of the minute comes now, not a minute later

        Assert.True(await Eventually(() => PluginLog(daemon.Daemon, id).Any(line => line.Message.Contains("log over the daemon's budget", StringComparison.Ordinal))));
        var lines = PluginLog(daemon.Daemon, id);
        var relayed = lines.Count(line => line.Source == "plugin" && line.Message.StartsWith("flood ", StringComparison.Ordinal));
        var summary = Assert.Single(lines, line => line.Message.Contains("log over the daemon's budget", StringComparison.Ordinal)).Message;
        var dropped = int.Parse(Regex.Match(summary, @"budget: (\d+) lines").Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(relayed, 1, 300);
        // Every line is either relayed or counted: the flood, and any line of the worker's own after it in that minute.
        Assert.InRange(relayed + dropped, Behaviour.FloodLines, Behaviour.FloodLines + 20);
        Assert.Contains("a worker may send 300 lines", summary);
        await AssertCleanAndServing(daemon, Behaviour.StderrFlood);
    }

    /// <summary>The daemon's log lines under a plugin's category: the source and message the worker sent, or the daemon's own text.</summary>
    internal static List<(string Source, string Message)> PluginLog(DaemonProcess daemon, string pluginId) =>
        daemon.Log.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Where(line => line.StartsWith('{'))
            .Select(line => JsonDocument.Parse(line).RootElement)
            .Where(line => line.GetProperty("Category").GetString() == "Connectias.Sandbox.Plugin." + pluginId)
            .Select(line => line.GetProperty("State") is var state && state.TryGetProperty("Source", out var source)
                ? (source.GetString()!, state.GetProperty("Message").GetString()!)
                : ("", line.GetProperty("Message").GetString()!))
            .ToList();

    [Fact]
    public async Task A_load_whose_caller_goes_away_is_withdrawn_not_left_LOADING()
    {
        // A worker that never hands shake keeps the load waiting for certain while its caller gives up.
        var id = IdFor(Behaviour.NoHandshake) + "-abandoned";
        shared.UseWorker(Behaviour.NoHandshake);
        using var client = shared.Daemon.Client();
        var request = new LoadPluginRequest { Package = Google.Protobuf.ByteString.CopyFrom(shared.Daemon.Package("noop", id)) };
        await Assert.ThrowsAsync<RpcException>(async () => await client.Raw.LoadPluginAsync(request, deadline: DateTime.UtcNow.AddSeconds(1)));

        shared.UseWorker(FakeWorkerDaemon.RealWorker);
        var clock = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                Assert.Equal(PluginState.Ready, (await client.LoadAsync(shared.Daemon.Package("noop", id))).State);
                break;
            }
            catch (SandboxException e) when (e.Reason == ErrorReason.AlreadyLoaded && clock.Elapsed < Patience)
            {
                await Task.Delay(100); // the abandoned load is still being taken back
            }
        }

        Assert.Contains(shared.Daemon.AuditRecords(), r => r.Event == "LOAD_REJECTED" && r.PluginId == id);
        Assert.Empty(FakeWorkerDaemon.LiveFakeWorkers());
        await client.UnloadAsync(id);
    }

    private static string IdFor(string behaviour) => "com.test." + behaviour;

    /// <summary>Loads a package with the worker playing <paramref name="behaviour"/>; the load must be refused with <paramref name="reason"/>.</summary>
    private static async Task<SandboxException> LoadRefused(FakeWorkerDaemon daemon, string behaviour, StatusCode status, ErrorReason reason)
    {
        var id = IdFor(behaviour);
        daemon.UseWorker(behaviour);
        using var client = daemon.Daemon.Client();
        var error = await ApiErrorTests.Refused(() => client.LoadAsync(daemon.Daemon.Package("noop", id)), status, reason.WireName(), id);
        Assert.Equal(reason, error.Reason);
        return error;
    }

    /// <summary>A load that failed leaves no plugin of that id.</summary>
    private static async Task AssertNotLoaded(FakeWorkerDaemon daemon, string behaviour)
    {
        using var client = daemon.Daemon.Client();
        await ApiErrorTests.Refused(() => client.GetAsync(IdFor(behaviour)), StatusCode.NotFound, "PLUGIN_NOT_FOUND");
    }

    /// <summary>
    /// No fake worker is alive and the plugin has no run directory left (the daemon may still be reaping, so both
    /// get a bounded wait); then, with the real worker, the daemon loads and runs the hello sample.
    /// </summary>
    private static async Task AssertCleanAndServing(FakeWorkerDaemon daemon, string behaviour)
    {
        var id = IdFor(behaviour);
        await Eventually(() => FakeWorkerDaemon.LiveFakeWorkers().Count == 0 && daemon.Daemon.PluginRunDirectories(id).Count == 0);
        Assert.Empty(FakeWorkerDaemon.LiveFakeWorkers());
        Assert.Empty(daemon.Daemon.PluginRunDirectories(id));

        daemon.UseWorker(FakeWorkerDaemon.RealWorker);
        using var client = daemon.Daemon.Client();
        var healthy = id + "-after";
        await client.LoadAsync(daemon.Daemon.Package("hello", healthy, HelloPermissions));
        Assert.Equal("Hello, still serving!", (await client.ExecuteAsync(healthy, "greet", "still serving"u8.ToArray())).Output.ToStringUtf8());
        await client.UnloadAsync(healthy);
    }

    private static async Task<bool> Eventually(Func<bool> condition)
    {
        var clock = Stopwatch.StartNew();
        while (!condition())
        {
            if (clock.Elapsed > Patience) return false;
            await Task.Delay(50);
        }

        return true;
    }

    private static HashSet<(string Event, string PluginId)> AuditEvents(DaemonProcess daemon) =>
        daemon.AuditRecords().Select(record => (record.Event, record.PluginId)).ToHashSet();
}
