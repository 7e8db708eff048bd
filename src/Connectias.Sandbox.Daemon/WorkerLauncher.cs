using System.Collections.Concurrent;
using System.Diagnostics;
using Connectias.Sandbox.WorkerProtocol;

namespace Connectias.Sandbox.Daemon;

/// <summary>A started worker process whose handshake was accepted.</summary>
internal sealed record StartedWorker(Process Process, string SocketPath);

/// <summary>
/// Starts worker processes: inside bubblewrap (no network, fresh PID/IPC/UTS namespaces, read-only
/// system, the daemon's state hidden, --die-with-parent) when it is available, otherwise as a plain
/// child in its own process group with a parent-death signal. Environment is cleared either way.
/// All processes are spawned from one long-lived thread: Linux delivers the parent-death signal when
/// the spawning *thread* exits, and a thread-pool thread may retire at any time.
/// </summary>
internal sealed class WorkerLauncher : IDisposable
{
    private readonly BlockingCollection<(ProcessStartInfo Start, TaskCompletionSource<Process> Result)> _spawnQueue = new();
    private readonly Thread _spawner;
    private readonly string _workerDll;
    private readonly string _dotnet;
    private readonly string? _workerExecutable;

    public WorkerLauncher(DaemonOptions options, ILogger<WorkerLauncher> logger)
    {
        _workerDll = Path.Combine(AppContext.BaseDirectory, "connectias-sandbox-worker.dll");
        _dotnet = FindDotnet();
        _workerExecutable = options.WorkerExecutable is { Length: > 0 } executable ? Path.GetFullPath(executable) : null;
        UseBubblewrap = options.Sandbox switch
        {
            "none" => false,
            "bubblewrap" => BubblewrapWorks() ? true : throw new InvalidOperationException("Sandbox=bubblewrap, but bwrap is missing or cannot create namespaces here"),
            _ => BubblewrapWorks(),
        };
        StateDir = Path.GetFullPath(options.StateDir);
        _spawner = new Thread(SpawnLoop) { IsBackground = true, Name = "worker-spawner" };
        _spawner.Start();
        logger.LogInformation("worker sandbox: {Sandbox}; worker: {Worker}", Description, _workerExecutable ?? $"{_dotnet} {_workerDll}");
    }

    public bool UseBubblewrap { get; }

    private string WorkerDirectory => Path.GetDirectoryName(_workerExecutable ?? _workerDll)!;

    /// <summary>The directory of the dotnet host, links resolved (e.g. /usr/share/dotnet).</summary>
    private string DotnetRoot => Path.GetDirectoryName(new FileInfo(_dotnet).ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? Path.GetFullPath(_dotnet))!;
    private string StateDir { get; }

    public string Description => UseBubblewrap
        ? "bubblewrap (no network; new PID, IPC and UTS namespaces; read-only system; state hidden; dies with the daemon)"
        : "plain child process (own process group, parent-death signal, cleared environment; install bubblewrap for namespaces)";

    public async Task<StartedWorker> StartAsync(string runDirectory, string? storageDirectory, TimeSpan timeout, CancellationToken cancellation)
    {
        var socket = Path.Combine(runDirectory, "worker.sock");
        var start = UseBubblewrap ? BubblewrapStart(runDirectory, storageDirectory, socket) : PlainStart(socket);
        start.RedirectStandardOutput = true;
        start.RedirectStandardError = true;
        start.RedirectStandardInput = true; // empty: nothing to read from the daemon's terminal
        start.UseShellExecute = false;

        var spawned = new TaskCompletionSource<Process>(TaskCreationOptions.RunContinuationsAsynchronously);
        _spawnQueue.Add((start, spawned), cancellation);
        var process = await spawned.Task;
        process.StandardInput.Close();
        try
        {
            using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
            deadline.CancelAfter(timeout);
            var line = await process.StandardOutput.ReadLineAsync(deadline.Token);
            var expected = WorkerHandshake.Format(socket, 0);
            var prefix = expected[..expected.LastIndexOf('|')];
            if (line is null || !line.StartsWith(prefix + "|", StringComparison.Ordinal))
            {
                var stderr = await ReadSome(process.StandardError);
                throw new SandboxException(ErrorReason.ResourceExhausted,
                    $"worker did not start: {(line is null ? "it exited" : "malformed handshake")}{(stderr.Length > 0 ? ": " + stderr : "")}");
            }

            return new StartedWorker(process, socket);
        }
        catch (OperationCanceledException) when (!cancellation.IsCancellationRequested)
        {
            ProcessTree.KillTree(process.Id);
            throw new SandboxException(ErrorReason.ResourceExhausted, $"worker gave no handshake within {timeout.TotalMilliseconds} ms");
        }
        catch
        {
            ProcessTree.KillTree(process.Id);
            await process.WaitForExitAsync(CancellationToken.None);
            throw;
        }
    }

    /// <summary>The worker's command line: a self-contained executable, or the dotnet host and the worker's DLL.</summary>
    private IEnumerable<string> WorkerCommand() => _workerExecutable is not null ? [_workerExecutable] : [_dotnet, _workerDll];

    private ProcessStartInfo PlainStart(string socket)
    {
        // setsid(1) execs the worker as the leader of a new process group, so one kill(-pid) ends it and anything it starts.
        var command = WorkerCommand().ToList();
        var setsid = File.Exists("/usr/bin/setsid");
        var start = new ProcessStartInfo(setsid ? "/usr/bin/setsid" : command[0]);
        foreach (var part in setsid ? command : command.Skip(1)) start.ArgumentList.Add(part);
        start.ArgumentList.Add("--socket");
        start.ArgumentList.Add(socket);
        start.ArgumentList.Add("--parent-pid");
        start.ArgumentList.Add(Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture));
        start.Environment.Clear();
        foreach (var (key, value) in WorkerEnvironment()) start.Environment[key] = value;
        return start;
    }

    private ProcessStartInfo BubblewrapStart(string runDirectory, string? storageDirectory, string socket)
    {
        var start = new ProcessStartInfo("bwrap");
        string[] sandbox =
        [
            "--die-with-parent", "--new-session",
            "--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
            "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp",
            "--tmpfs", StateDir, // audit log, keys and other plugins' storage stay out of sight
            // The worker's own binaries and the .NET runtime may live under /tmp (a checkout there, say): show them again.
            "--ro-bind", AppContext.BaseDirectory, AppContext.BaseDirectory,
            "--ro-bind", DotnetRoot, DotnetRoot,
            "--ro-bind", WorkerDirectory, WorkerDirectory,
            "--bind", runDirectory, runDirectory,
            "--clearenv",
        ];
        foreach (var argument in sandbox) start.ArgumentList.Add(argument);
        if (storageDirectory is not null)
        {
            start.ArgumentList.Add("--bind");
            start.ArgumentList.Add(storageDirectory);
            start.ArgumentList.Add(storageDirectory);
        }

        foreach (var (key, value) in WorkerEnvironment())
        {
            start.ArgumentList.Add("--setenv");
            start.ArgumentList.Add(key);
            start.ArgumentList.Add(value);
        }

        foreach (var argument in new[] { "--" }.Concat(WorkerCommand()).Concat(["--socket", socket])) start.ArgumentList.Add(argument);
        start.Environment.Clear();
        start.Environment["PATH"] = "/usr/bin:/bin";
        return start;
    }

    private static IEnumerable<(string, string)> WorkerEnvironment()
    {
        yield return (WorkerHandshake.CookieVariable, WorkerHandshake.CookieValue);
        yield return ("PATH", "/usr/bin:/bin");
        yield return ("HOME", "/tmp");
        yield return ("DOTNET_CLI_TELEMETRY_OPTOUT", "1");
        // Nothing but the worker may write to its stdout: no first-run banner from the dotnet host.
        yield return ("DOTNET_NOLOGO", "1");
        yield return ("DOTNET_SKIP_FIRST_TIME_EXPERIENCE", "1");
        yield return ("DOTNET_gcServer", "0");
        if (Environment.GetEnvironmentVariable("DOTNET_ROOT") is { Length: > 0 } root) yield return ("DOTNET_ROOT", root);
    }

    private void SpawnLoop()
    {
        foreach (var (start, result) in _spawnQueue.GetConsumingEnumerable())
        {
            try
            {
                result.SetResult(Process.Start(start) ?? throw new InvalidOperationException("the worker process did not start"));
            }
            catch (Exception e)
            {
                result.SetException(new SandboxException(ErrorReason.ResourceExhausted, $"cannot start a worker process: {e.Message}", null, e));
            }
        }
    }

    private static async Task<string> ReadSome(StreamReader reader)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(2));
        try
        {
            var text = await reader.ReadToEndAsync(timeout.Token);
            return text.Length > 2000 ? text[..2000] : text.Trim();
        }
        catch (OperationCanceledException)
        {
            return "";
        }
    }

    private static string FindDotnet()
    {
        if (Environment.ProcessPath is { } self && Path.GetFileNameWithoutExtension(self) == "dotnet") return self;
        foreach (var candidate in new[] { Environment.GetEnvironmentVariable("DOTNET_HOST_PATH"), "/usr/share/dotnet/dotnet", "/usr/lib/dotnet/dotnet", "/usr/local/share/dotnet/dotnet", "/usr/bin/dotnet" })
            if (!string.IsNullOrEmpty(candidate) && File.Exists(candidate)) return candidate;
        return "dotnet";
    }

    private static bool BubblewrapWorks()
    {
        try
        {
            var probe = new ProcessStartInfo("bwrap") { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
            foreach (var argument in new[] { "--unshare-net", "--unshare-pid", "--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev", "true" })
                probe.ArgumentList.Add(argument);
            using var process = Process.Start(probe)!;
            return process.WaitForExit(5000) && process.ExitCode == 0;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return false; // not installed
        }
    }

    public void Dispose() => _spawnQueue.CompleteAdding();
}
