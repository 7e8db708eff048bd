using System.Diagnostics;
using Connectias.Sandbox.Daemon.Calls;
using Connectias.Sandbox.WorkerProtocol;

namespace Connectias.Sandbox.Daemon.Workers;

/// <summary>Where a worker is in its life; the only record of it.</summary>
internal enum WorkerState
{
    /// <summary>Handshake accepted; the plugin is being loaded into it.</summary>
    Loading,

    /// <summary>The plugin is loaded; calls run.</summary>
    Serving,

    /// <summary>The daemon decided to end it (<see cref="WorkerHandle.EndedBy"/> says why when it was not an unload).</summary>
    Stopping,

    /// <summary>Killed and reaped, its socket and run directory removed.</summary>
    Stopped,
}

/// <summary>
/// One worker process serving one plugin, from its handshake to its end: the process, its private socket
/// and run directory, the connection to it, its call queue and its state. A restart is a new handle.
/// </summary>
internal sealed class WorkerHandle : IDisposable
{
    private readonly Lock _sync = new();
    private readonly TaskCompletionSource _stopped = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public WorkerHandle(int number, Process process, int workerPid, string engine, string socketPath, string runDirectory, WorkerConnection connection, CallQueue calls)
    {
        Number = number;
        Process = process;
        Pid = process.Id;
        WorkerPid = workerPid;
        Engine = engine;
        SocketPath = socketPath;
        RunDirectory = runDirectory;
        Connection = connection;
        Calls = calls;
    }

    /// <summary>Counts workers over the daemon's life; part of the run directory's name.</summary>
    public int Number { get; }
    public Process Process { get; }

    /// <summary>The process the daemon started: the worker itself, or bubblewrap around it. Its tree is what is killed.</summary>
    public int Pid { get; }

    /// <summary>The worker process's own pid as the host sees it (inside bubblewrap, a grandchild of <see cref="Pid"/>): what users are shown.</summary>
    public int WorkerPid { get; }
    /// <summary>The worker's Wasmtime version and engine settings, from its handshake: compiled code is keyed by it.</summary>
    public string Engine { get; }

    /// <summary>Where the worker listened until the daemon connected (it removes the socket then).</summary>
    public string SocketPath { get; }

    /// <summary>The worker's private directory, bind-mounted into its sandbox; renamed when a pooled worker takes a plugin.</summary>
    public string RunDirectory { get; private set; }

    /// <summary>A pooled worker's storage slot until a plugin takes the worker (see <see cref="StorageSlots"/>).</summary>
    public string? StorageSlot { get; set; }

    /// <summary>The one connection to the worker: Load, calls, cleanup and the network broker's traffic.</summary>
    public WorkerConnection Connection { get; }

    /// <summary>The worker's native runtime said an allocation failed (its memory cap, RLIMIT_DATA, said no).</summary>
    public bool RanOutOfMemory { get; set; }

    /// <summary>Ends when the daemon has read the worker's stderr to its end (everything it said before it died).</summary>
    public TaskCompletionSource ErrorStreamEnded { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    public CallQueue Calls { get; }

    /// <summary>The call path, set once the worker serves.</summary>
    public CallPipeline? Pipeline { get; set; }

    /// <summary>Cancelled once the worker is being stopped: its call loop ends.</summary>
    public CancellationTokenSource Lifetime { get; } = new();

    /// <summary>Cancelled as soon as the daemon decides to end this worker: its network requests end with it.</summary>
    public CancellationTokenSource NetworkLifetime { get; } = new();

    public WorkerState State
    {
        get
        {
            lock (_sync) return field;
        }
        private set;
    } = WorkerState.Loading;

    /// <summary>Why the daemon ended this worker, which calls in flight report; null for an unload or while it serves.</summary>
    public SandboxException? EndedBy
    {
        get
        {
            lock (_sync) return field;
        }
        private set;
    }

    /// <summary>Gives the run directory the name of the plugin that took this pooled worker (the mount follows the directory).</summary>
    public void RenameRunDirectory(string path)
    {
        Directory.Move(RunDirectory, path);
        RunDirectory = path;
    }

    /// <summary>Loading → Serving; false when the worker is already being stopped.</summary>
    public bool TryStartServing()
    {
        lock (_sync)
        {
            if (State != WorkerState.Loading) return false;
            State = WorkerState.Serving;
            return true;
        }
    }

    /// <summary>
    /// Loading or Serving → Stopping, recording <paramref name="cause"/>; false when someone else already
    /// began stopping it, so exactly one caller ends each worker.
    /// </summary>
    public bool TryBeginStopping(SandboxException? cause)
    {
        lock (_sync)
        {
            if (State is WorkerState.Stopping or WorkerState.Stopped) return false;
            State = WorkerState.Stopping;
            EndedBy = cause;
            return true;
        }
    }

    /// <summary>Loading → Stopping only: false once the worker serves (its plugin is READY and is ended as such) or stops.</summary>
    public bool TryBeginStoppingWhileLoading(SandboxException cause)
    {
        lock (_sync)
        {
            if (State != WorkerState.Loading) return false;
            State = WorkerState.Stopping;
            EndedBy = cause;
            return true;
        }
    }

    public void MarkStopped()
    {
        lock (_sync) State = WorkerState.Stopped;
        _stopped.TrySetResult();
    }

    /// <summary>Completes once the worker is <see cref="WorkerState.Stopped"/>, whoever stopped it.</summary>
    public Task Stopped => _stopped.Task;

    public void Dispose()
    {
        Connection.Dispose(); // first: the calls still waiting fail now, while their pipeline can still account for them
        Pipeline?.Dispose();
        // Closing stdin also tells a worker still running that the daemon is done with it (--watch-stdin).
        WorkerLauncher.DisposeWithStreams(Process);
        Lifetime.Dispose();
        NetworkLifetime.Dispose();
    }
}
