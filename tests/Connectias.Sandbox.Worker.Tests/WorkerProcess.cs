using System.Diagnostics;
using Connectias.Sandbox.Worker.V1;
using Connectias.Sandbox.WorkerProtocol;

namespace Connectias.Sandbox.Worker.Tests;

/// <summary>Load requests for the sample plugins, with small limits that keep hostile ones quick.</summary>
internal static class WorkerRequests
{
    public static LoadRequest Load(string plugin, string storageDir, params string[] permissions)
    {
        var request = new LoadRequest
        {
            PluginId = "com.example." + plugin.Replace('_', '-'),
            PluginVersion = "1.0.0",
            Module = Google.Protobuf.ByteString.CopyFrom(SamplePlugins.Wasm(plugin)),
            Limits = new WorkerLimits
            {
                MemoryBytes = 32 * 1024 * 1024,
                FuelPerCall = 1_000_000,
                TimeoutMs = 2000,
                StorageBytes = 1024 * 1024,
                OutputBytes = 4 * 1024 * 1024,
            },
            StorageDir = storageDir,
        };
        request.GrantedPermissions.AddRange(permissions);
        return request;
    }
}

/// <summary>A real worker process started the way the supervisor starts one, and a client to it.</summary>
internal sealed class WorkerProcess : IDisposable
{
    private static readonly string WorkerDll = Path.Combine(AppContext.BaseDirectory, "connectias-sandbox-worker.dll");
    private readonly Process _process;
    private readonly List<string> _stderr = [];
    private readonly WorkerConnection _connection;
    private readonly string _directory;

    private WorkerProcess(Process process, string directory, string handshake)
    {
        _process = process;
        _directory = directory;
        Handshake = handshake;
        var parsed = WorkerHandshake.TryParse(handshake, out var problem) ?? throw new InvalidOperationException(problem);
        SocketPath = parsed.Address;
        ReportedPid = parsed.Pid;
        SocketExistedBeforeConnecting = File.Exists(SocketPath);
        _connection = WorkerConnection.ConnectAsync(SocketPath, CancellationToken.None).GetAwaiter().GetResult();
        Client = new BlockingWorkerClient(_connection);
    }

    public string Handshake { get; }

    /// <summary>A directory removed with the worker, e.g. for the plugin's storage.</summary>
    public string Scratch(string name) => Directory.CreateDirectory(Path.Combine(_directory, name)).FullName;
    public string SocketPath { get; }
    public int ReportedPid { get; }
    public int Pid => _process.Id;
    public bool SocketExistedBeforeConnecting { get; }
    public BlockingWorkerClient Client { get; }
    public WorkerConnection Connection => _connection;
    public bool HasExited => _process.HasExited;
    public int? ExitCode => _process.WaitForExit(2000) ? _process.ExitCode : null;
    public string StandardOutputRest { get; private set; } = "";

    public IReadOnlyList<string> StderrLines
    {
        get
        {
            lock (_stderr) return _stderr.ToList();
        }
    }

    public static ProcessStartInfo StartInfo(string socketPath, bool withCookie = true)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add(WorkerDll);
        start.ArgumentList.Add("--socket");
        start.ArgumentList.Add(socketPath);
        start.ArgumentList.Add("--parent-pid");
        start.ArgumentList.Add(Environment.ProcessId.ToString());
        if (withCookie) start.Environment[WorkerHandshake.CookieVariable] = WorkerHandshake.CookieValue;
        return start;
    }

    public static WorkerProcess Start()
    {
        var directory = Directory.CreateTempSubdirectory("connectias-worker-").FullName;
        var process = Spawner.Start(StartInfo(Path.Combine(directory, "worker.sock")));
        var stderr = new List<string>();
        var handshakeTask = process.StandardOutput.ReadLineAsync();
        if (!handshakeTask.Wait(TimeSpan.FromSeconds(30)) || handshakeTask.Result is null)
        {
            process.Kill(entireProcessTree: true);
            throw new InvalidOperationException($"worker gave no handshake: {process.StandardError.ReadToEnd()}");
        }

        var worker = new WorkerProcess(process, directory, handshakeTask.Result);
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null) lock (worker._stderr) worker._stderr.Add(e.Data);
        };
        process.BeginErrorReadLine();
        return worker;
    }

    /// <summary>Everything the worker wrote to stdout after the handshake (must stay empty).</summary>
    public string StopAndReadStdout()
    {
        _process.Kill();
        _process.WaitForExit();
        StandardOutputRest = _process.StandardOutput.ReadToEnd();
        return StandardOutputRest;
    }

    public void Dispose()
    {
        _connection.Dispose();
        if (!_process.HasExited) _process.Kill(entireProcessTree: true);
        _process.WaitForExit();
        _process.Dispose();
        Directory.Delete(_directory, recursive: true);
    }
}

/// <summary>The daemon's connection to a worker, one request at a time, for tests that read best that way.</summary>
internal sealed class BlockingWorkerClient(WorkerConnection connection)
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);

    public LoadResponse Load(LoadRequest request) => connection.LoadAsync(request, Patience).GetAwaiter().GetResult();

    public ExecuteResponse Execute(ExecuteRequest request) => connection.ExecuteAsync(request, Patience).GetAwaiter().GetResult();

    public CleanupResponse Cleanup(CleanupRequest request) => connection.CleanupAsync(request, Patience).GetAwaiter().GetResult();

    public GetStatusResponse GetStatus(GetStatusRequest request) => connection.GetStatusAsync(Patience).GetAwaiter().GetResult();
}

/// <summary>
/// Starts processes from one thread that lives as long as the test run: the worker's parent-death signal fires when
/// the *thread* that spawned it exits, and the thread an async test started on may end while the worker should live.
/// </summary>
internal static class Spawner
{
    private static readonly System.Collections.Concurrent.BlockingCollection<(ProcessStartInfo Start, TaskCompletionSource<Process> Started)> Queue = new();

    static Spawner() => new Thread(() =>
    {
        foreach (var (start, started) in Queue.GetConsumingEnumerable())
        {
            try
            {
                started.SetResult(Process.Start(start)!);
            }
            catch (Exception e)
            {
                started.SetException(e);
            }
        }
    })
    { IsBackground = true, Name = "test-worker-spawner" }.Start();

    public static Process Start(ProcessStartInfo start)
    {
        var started = new TaskCompletionSource<Process>();
        Queue.Add((start, started));
        return started.Task.GetAwaiter().GetResult();
    }
}
