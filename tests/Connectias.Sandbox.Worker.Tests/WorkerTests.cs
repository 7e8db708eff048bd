using System.Diagnostics;
using System.Text;
using Connectias.Sandbox.Runtime;
using Connectias.Sandbox.Worker.V1;
using Connectias.Sandbox.WorkerProtocol;
using Google.Protobuf;

namespace Connectias.Sandbox.Worker.Tests;

public class WorkerTests
{
    [Fact]
    public void The_handshake_is_one_line_naming_the_engine_the_socket_and_the_real_pid_and_the_socket_goes_once_connected()
    {
        using var worker = WorkerProcess.Start();
        Assert.Matches(@"^CONNECTIAS-WORKER\|2\|wasmtime-[0-9.]+\+fuel,epoch,opt=speed,capped-memory\|unix\|/.+/worker\.sock\|\d+$", worker.Handshake);
        Assert.Equal(worker.Pid, worker.ReportedPid);
        Assert.True(worker.SocketExistedBeforeConnecting);
        Assert.Equal(0UL, worker.Client.GetStatus(new GetStatusRequest()).Calls); // served on the one connection
        Assert.False(File.Exists(worker.SocketPath)); // nobody else can connect
    }

    [Fact]
    public async Task Started_by_hand_it_refuses_with_a_clear_message_and_nothing_on_stdout()
    {
        using var process = Process.Start(WorkerProcess.StartInfo("/tmp/never.sock", withCookie: false))!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEnd();
        process.WaitForExit();
        Assert.Equal(2, process.ExitCode);
        Assert.Equal("", await stdout);
        Assert.Contains("not run by hand", stderr);
    }

    [Fact]
    public void A_plugin_loads_and_runs_in_the_worker_with_stats_and_a_clean_stdout()
    {
        using var worker = WorkerProcess.Start();
        Assert.Null(worker.Client.Load(WorkerRequests.Load("hello", worker.Scratch("storage"), "storage", "system_info")).Fault);

        var greeting = worker.Client.Execute(new ExecuteRequest { Command = "greet", Args = ByteString.CopyFromUtf8("worker") });
        Assert.Null(greeting.Fault);
        Assert.Equal("Hello, worker!", greeting.Output.ToStringUtf8());
        Assert.True(greeting.FuelConsumed > 0 && greeting.DurationUs > 0 && greeting.MemoryBytes > 0);

        Assert.Equal("2", worker.Client.Execute(new ExecuteRequest { Command = "count" }).Output.ToStringUtf8());
        Assert.Null(worker.Client.Execute(new ExecuteRequest { Command = "log" }).Fault);
        var status = worker.Client.GetStatus(new GetStatusRequest());
        Assert.Equal(3UL, status.Calls);
        Assert.True(status.FuelConsumedTotal >= greeting.FuelConsumed);

        var cleanup = worker.Client.Cleanup(new CleanupRequest { TimeoutMs = 1000 });
        Assert.True(cleanup.Called);
        Assert.Equal(0, cleanup.Code);

        // The plugin's printf went to the log on stderr, tagged; stdout holds nothing after the handshake.
        Assert.Equal("", worker.StopAndReadStdout());
        Assert.Contains(worker.StderrLines, line => line.Contains("\"source\":\"plugin-stdout\"") && line.Contains("printf to stdout 42") && line.Contains("\"plugin_id\":\"com.example.hello\""));
    }

    [Fact]
    public void A_plugin_error_is_an_ordinary_fault_and_the_worker_keeps_serving()
    {
        using var worker = WorkerProcess.Start();
        worker.Client.Load(WorkerRequests.Load("hello", worker.Scratch("storage"), "storage", "system_info"));
        var failed = worker.Client.Execute(new ExecuteRequest { Command = "fail" });
        Assert.Equal("PLUGIN_ERROR", failed.Fault.Reason);
        Assert.False(failed.Fault.Fatal);
        Assert.Equal("42", failed.Fault.Metadata["plugin_code"]);
        Assert.Equal("Hello, still!", worker.Client.Execute(new ExecuteRequest { Command = "greet", Args = ByteString.CopyFromUtf8("still") }).Output.ToStringUtf8());
    }

    public static TheoryData<string, string, string> HostileCalls => new()
    {
        // plugin, permission, expected reason
        { "infinite_loop", "", "FUEL_EXHAUSTED" },
        { "grow_bomb", "", "MEMORY_LIMIT_EXCEEDED" },
        { "malloc_bomb", "", "MEMORY_LIMIT_EXCEEDED" },
        { "deep_recursion", "", "PLUGIN_TRAPPED" },
        { "unreachable", "", "PLUGIN_TRAPPED" },
        { "giant_output", "", "OUTPUT_TOO_LARGE" },
        { "bad_pointer", "", "PLUGIN_TRAPPED" },
        { "proc_exit", "", "PLUGIN_CRASHED" },
        { "host_call_loop", "", "FUEL_EXHAUSTED" },
    };

    [Theory]
    [MemberData(nameof(HostileCalls))]
    public void A_fatal_call_is_reported_as_fatal_and_the_worker_process_stays_sound(string plugin, string permission, string reason)
    {
        using var worker = WorkerProcess.Start();
        var request = WorkerRequests.Load(plugin, "", permission.Length > 0 ? [permission] : []);
        if (plugin == "deep_recursion") request.Limits.FuelPerCall = 1_000_000_000;
        if (plugin.EndsWith("bomb", StringComparison.Ordinal)) request.Limits.FuelPerCall = 10_000_000_000;
        Assert.Null(worker.Client.Load(request).Fault);

        var response = worker.Client.Execute(new ExecuteRequest { Command = "run" });
        Assert.Equal(reason, response.Fault.Reason);
        Assert.True(response.Fault.Fatal);
        Assert.False(string.IsNullOrEmpty(response.Fault.Message));

        // The process answers, and refuses to run the terminated plugin again.
        Assert.False(worker.HasExited);
        Assert.Equal(1UL, worker.Client.GetStatus(new GetStatusRequest()).Calls);
        Assert.Equal("PLUGIN_CRASHED", worker.Client.Execute(new ExecuteRequest { Command = "run" }).Fault.Reason);
    }

    public static TheoryData<string, string, string> HostileLoads => new()
    {
        { "huge_memory", "", "MEMORY_LIMIT_EXCEEDED" },
        { "start_loop", "", "FUEL_EXHAUSTED" },
        { "init_loop", "", "FUEL_EXHAUSTED" },
        { "init_error", "", "INIT_FAILED" },
        { "missing_export", "", "CORRUPTED_DATA" },
        { "wrong_signature", "", "CORRUPTED_DATA" },
        { "foreign_import", "", "CORRUPTED_DATA" },
        { "bad_wasi_import", "", "CORRUPTED_DATA" },
        { "storage_import", "", "PERMISSION_DENIED" },
        { "network_import", "network", "PERMISSION_DENIED" },
    };

    [Theory]
    [MemberData(nameof(HostileLoads))]
    public void A_refused_load_is_reported_and_the_worker_process_stays_sound(string plugin, string permission, string reason)
    {
        using var worker = WorkerProcess.Start();
        var response = worker.Client.Load(WorkerRequests.Load(plugin, "", permission.Length > 0 ? [permission] : []));
        Assert.Equal(reason, response.Fault.Reason);
        Assert.False(worker.HasExited);
        Assert.Equal("PLUGIN_NOT_FOUND", worker.Client.Execute(new ExecuteRequest { Command = "run" }).Fault.Reason);
    }

    [Fact]
    public void A_timeout_in_the_worker_honours_the_callers_deadline()
    {
        using var worker = WorkerProcess.Start();
        var request = WorkerRequests.Load("infinite_loop", "");
        request.Limits.FuelPerCall = 1_000_000_000_000;
        request.Limits.TimeoutMs = 30_000;
        worker.Client.Load(request);
        var clock = Stopwatch.StartNew();
        var response = worker.Client.Execute(new ExecuteRequest { Command = "run", DeadlineUnixMs = (ulong)DateTimeOffset.UtcNow.AddMilliseconds(200).ToUnixTimeMilliseconds() });
        Assert.Equal("TIMEOUT", response.Fault.Reason);
        Assert.True(response.Fault.Fatal);
        Assert.InRange(clock.ElapsedMilliseconds, 150, 5000);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)] // the pidfd watch alone, as when the death signal is lost
    public void The_worker_dies_within_a_second_of_its_parent_being_SIGKILLed(bool deathSignal)
    {
        var directory = Directory.CreateTempSubdirectory("connectias-orphan-").FullName;
        var socket = Path.Combine(directory, "w.sock");
        // A shell plays the supervisor: it starts the worker, then is killed with SIGKILL.
        var shell = new ProcessStartInfo("bash") { RedirectStandardOutput = true, UseShellExecute = false };
        shell.ArgumentList.Add("-c");
        // No --parent-pid: the worker watches whoever started it, here the shell.
        shell.ArgumentList.Add($"dotnet '{Path.Combine(AppContext.BaseDirectory, "connectias-sandbox-worker.dll")}' --socket '{socket}' & wait");
        shell.Environment[WorkerHandshake.CookieVariable] = WorkerHandshake.CookieValue;
        if (!deathSignal) shell.Environment[WorkerHandshake.NoDeathSignalVariable] = "1";
        using var parent = Process.Start(shell)!;
        var handshake = parent.StandardOutput.ReadLine()!;
        var workerPid = WorkerHandshake.TryParse(handshake, out _)!.Pid;
        Assert.True(Directory.Exists($"/proc/{workerPid}"));

        parent.Kill(); // SIGKILL to the shell only, not its children
        var clock = Stopwatch.StartNew();
        while (IsAlive(workerPid) && clock.ElapsedMilliseconds < 5000) Thread.Sleep(20);
        Assert.False(IsAlive(workerPid), "the orphaned worker is still running");
        Assert.True(clock.ElapsedMilliseconds < 1000, $"the orphaned worker took {clock.ElapsedMilliseconds} ms to exit");
        Directory.Delete(directory, recursive: true);
    }

    [Fact]
    public void With_watch_stdin_the_worker_exits_once_its_stdin_reaches_end_of_file()
    {
        var directory = Directory.CreateTempSubdirectory("connectias-stdin-").FullName;
        var start = WorkerProcess.StartInfo(Path.Combine(directory, "w.sock"));
        start.ArgumentList.Add(WorkerHandshake.WatchStdinFlag);
        start.RedirectStandardInput = true;
        using var process = Spawner.Start(start);
        Assert.StartsWith("CONNECTIAS-WORKER|", process.StandardOutput.ReadLine());
        Assert.False(process.WaitForExit(300)); // alive while the pipe is open

        process.StandardInput.Close(); // what the kernel does when the daemon dies, however it died
        Assert.True(process.WaitForExit(10_000), "the worker outlived its stdin");
        Assert.Equal(3, process.ExitCode);
        Assert.Contains("stdin reached end of file: the daemon is gone", process.StandardError.ReadToEnd());
        Directory.Delete(directory, recursive: true);
    }

    [Fact]
    public void SIGTERM_stops_the_worker_and_removes_its_socket()
    {
        using var worker = WorkerProcess.Start();
        using (var kill = Process.Start("kill", ["-TERM", worker.Pid.ToString()])) kill.WaitForExit();
        var clock = Stopwatch.StartNew();
        while (!worker.HasExited && clock.ElapsedMilliseconds < 5000) Thread.Sleep(20);
        Assert.True(worker.HasExited);
        Assert.False(File.Exists(worker.SocketPath));
    }

    /// <summary>Alive and not a zombie waiting to be reaped.</summary>
    private static bool IsAlive(int pid)
    {
        try
        {
            var status = File.ReadAllText($"/proc/{pid}/status");
            return !status.Contains("State:\tZ", StringComparison.Ordinal);
        }
        catch (IOException)
        {
            return false;
        }
    }
}
