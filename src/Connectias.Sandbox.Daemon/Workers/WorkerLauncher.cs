using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text;
using Connectias.Sandbox.Daemon.Calls;
using Connectias.Sandbox.Daemon.Hosting;
using Connectias.Sandbox.WorkerProtocol;

namespace Connectias.Sandbox.Daemon.Workers;

/// <summary>
/// Starts worker processes (see <see cref="WorkerCommandLine"/>) and accepts their handshake. All processes are
/// spawned from one long-lived thread: Linux delivers the parent-death signal when the spawning *thread* exits,
/// and a thread-pool thread may retire at any time.
/// </summary>
internal sealed class WorkerLauncher : IDisposable
{
    private readonly BlockingCollection<(ProcessStartInfo Start, TaskCompletionSource<Process> Result)> _spawnQueue = new();
    private readonly WorkerCommandLine _commandLine;
    private readonly DaemonOptions _options;
    private readonly QueuedBytes _queuedBytes;

    public WorkerLauncher(DaemonOptions options, QueuedBytes queuedBytes, ILogger<WorkerLauncher> logger)
    {
        _options = options;
        _queuedBytes = queuedBytes;
        UseBubblewrap = options.Sandbox switch
        {
            "none" => false,
            "bubblewrap" => BubblewrapWorks() ? true : throw new InvalidOperationException("Sandbox=bubblewrap, but bwrap is missing or cannot create namespaces here"),
            _ => BubblewrapWorks(),
        };
        // A root daemon's workers take their own uid, which needs bubblewrap: without it the socket and storage
        // directories are reachable only through the daemon's private state directory.
        WorkerIdentity.TryParse(options.WorkerUser, out var identity); // validated at start
        Identity = UseBubblewrap && Environment.IsPrivilegedProcess ? identity : null;
        _commandLine = new WorkerCommandLine(options.WorkerExecutable, options.WorkerRuntime, Identity, options.WorkerSyscallFilter);
        new Thread(SpawnLoop) { IsBackground = true, Name = "worker-spawner" }.Start();
        logger.LogInformation("worker sandbox: {Sandbox}; worker: {Worker}", Description, _commandLine.Worker);
    }

    private int _workers;

    public bool UseBubblewrap { get; }

    /// <summary>The uid and gid workers run as (a root daemon with bubblewrap); null when they keep the daemon's.</summary>
    public WorkerIdentity? Identity { get; }

    /// <summary>Gives a directory the worker writes (its run or storage directory) to the worker's uid, when it has its own.</summary>
    public void HandOver(string directory) => Identity?.HandOver(directory);

    /// <summary>Counts workers over the daemon's life; part of each run directory's name.</summary>
    public int NextNumber() => Interlocked.Increment(ref _workers);

    public string Description => (UseBubblewrap
        ? "bubblewrap (no network; new PID, IPC, UTS and cgroup namespaces; a root of system libraries and the worker's own files only; dies with the daemon; "
          + (Identity is { } identity ? $"{identity}, no capabilities" : Environment.IsPrivilegedProcess ? "no capabilities" : "new user namespace, no capabilities")
        : "plain child process (own process group, parent-death signal, cleared environment; "
          + (Environment.IsPrivilegedProcess ? "root without capabilities: install bubblewrap for namespaces and an unprivileged uid" : "install bubblewrap for namespaces"))
        + (!_options.WorkerSyscallFilter ? "; NO system-call filter: Sandbox:WorkerSyscallFilter=false)"
            : WorkerFaults.SyscallFilterAvailable ? "; seccomp allow-list)"
            : "; no system-call filter: it is built for x86-64 only)");

    /// <summary>
    /// Starts a worker in <paramref name="runDirectory"/> and waits for its handshake. A worker that exits or
    /// breaks the handshake is INIT_FAILED; one that stays silent past <c>WorkerStartTimeoutMs</c>, or cannot be
    /// spawned at all, is RESOURCE_EXHAUSTED. Either way it is killed and reaped before this throws.
    /// </summary>
    public async Task<WorkerHandle> StartAsync(int number, string runDirectory, string? storageDirectory, CancellationToken cancellation)
    {
        var socket = Path.Combine(runDirectory, "worker.sock");
        HandOver(runDirectory);
        if (storageDirectory is not null) HandOver(storageDirectory);
        var start = UseBubblewrap ? _commandLine.Bubblewrap(runDirectory, storageDirectory, socket) : _commandLine.Plain(socket);
        start.RedirectStandardOutput = true;
        start.RedirectStandardError = true;
        start.RedirectStandardInput = true; // never written: its end of file tells the worker the daemon is gone (--watch-stdin)
        start.UseShellExecute = false;

        var spawned = new TaskCompletionSource<Process>(TaskCreationOptions.RunContinuationsAsynchronously);
        _spawnQueue.Add((start, spawned), cancellation);
        var process = await spawned.Task;
        try
        {
            using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
            deadline.CancelAfter(_options.WorkerStartTimeout);
            var line = await ReadBoundedLineAsync(process.StandardOutput, WorkerHandshake.MaxLineLength, deadline.Token);
            var handshake = WorkerHandshake.TryParse(line, out var problem);
            var mismatch = handshake?.Mismatch(socket);
            if (handshake is null || mismatch is not null)
            {
                ProcessTree.KillTree(process.Id);
                await process.WaitForExitAsync(CancellationToken.None);
                var stderr = await ReadSome(process.StandardError);
                var what = line is null ? $"the worker exited before its handshake (exit status {process.ExitCode})" : $"the worker broke the handshake: {mismatch ?? problem}";
                throw new SandboxException(ErrorReason.InitFailed, what + (stderr.Length > 0 ? ": " + stderr : ""));
            }

            // The handshake names the worker's pid in its own PID namespace; inside bubblewrap that is not the host's.
            var workerPid = UseBubblewrap ? ProcessTree.HostPidOf(process.Id, handshake.Pid) ?? process.Id : process.Id;
            WorkerConnection connection;
            try
            {
                connection = await WorkerConnection.ConnectAsync(socket, deadline.Token);
            }
            catch (System.Net.Sockets.SocketException e)
            {
                throw new SandboxException(ErrorReason.InitFailed, $"the worker announced {socket} but the daemon cannot connect to it: {e.Message}");
            }

            return new WorkerHandle(number, process, workerPid, handshake.Engine, socket, runDirectory, connection,
                new CallQueue(_options.QueueLimit, _options.QueueBytesPerPlugin, _queuedBytes));
        }
        catch (OperationCanceledException) when (!cancellation.IsCancellationRequested)
        {
            ProcessTree.KillTree(process.Id);
            await process.WaitForExitAsync(CancellationToken.None);
            DisposeWithStreams(process);
            throw new SandboxException(ErrorReason.ResourceExhausted,
                $"the worker gave no handshake within {_options.WorkerStartTimeoutMs} ms (Sandbox:WorkerStartTimeoutMs)");
        }
        catch
        {
            ProcessTree.KillTree(process.Id);
            await process.WaitForExitAsync(CancellationToken.None);
            DisposeWithStreams(process);
            throw;
        }
    }

    /// <summary>Process.Dispose leaves redirected streams it handed out open: each is a pipe descriptor to close.</summary>
    public static void DisposeWithStreams(Process process)
    {
        process.StandardInput.Dispose();
        process.StandardOutput.Dispose();
        process.StandardError.Dispose();
        process.Dispose();
    }

    /// <summary>The next line, but no more than <paramref name="max"/> characters of it: a child is not trusted to end its lines.</summary>
    private static async Task<string?> ReadBoundedLineAsync(StreamReader reader, int max, CancellationToken cancellation)
    {
        var line = new StringBuilder();
        var one = new char[1];
        while (await reader.ReadAsync(one.AsMemory(), cancellation) == 1)
        {
            if (one[0] == '\n') return line.ToString().TrimEnd('\r');
            line.Append(one[0]);
            if (line.Length > max) return line.ToString();
        }

        return line.Length > 0 ? line.ToString() : null;
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
            // At most 2000 characters: the rest of what a failed worker wrote is not read at all.
            var text = new char[2000];
            var length = await reader.ReadBlockAsync(text.AsMemory(), timeout.Token);
            return new string(text, 0, length).Trim();
        }
        catch (OperationCanceledException)
        {
            return "";
        }
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
