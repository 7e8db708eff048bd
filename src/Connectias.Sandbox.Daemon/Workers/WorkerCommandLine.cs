using System.Diagnostics;
using System.Globalization;
using Connectias.Sandbox.WorkerProtocol;

namespace Connectias.Sandbox.Daemon.Workers;

/// <summary>
/// How a worker process is started: inside bubblewrap (no network, fresh PID/IPC/UTS namespaces, read-only
/// system, the daemon's state hidden, --die-with-parent), or as a plain child in its own process group.
/// The environment is cleared either way.
/// </summary>
internal sealed class WorkerCommandLine
{
    private readonly string _workerDll;
    private readonly string _dotnet;
    private readonly string? _workerExecutable;
    private readonly string _origin;
    private readonly string _stateDir;

    public WorkerCommandLine(string? workerExecutable, string workerRuntime, string stateDir)
    {
        _workerDll = Path.Combine(AppContext.BaseDirectory, "connectias-sandbox-worker.dll");
        _dotnet = FindDotnet();
        // Sandbox:WorkerExecutable overrides Sandbox:WorkerRuntime; "native" starts the NativeAOT publish beside the daemon.
        (_workerExecutable, _origin) = workerExecutable is { Length: > 0 } executable
            ? (Path.GetFullPath(executable), "Sandbox:WorkerExecutable")
            : workerRuntime == "native" ? (NativeWorkerPath, "native, NativeAOT") : (null, "jit, through the dotnet host");
        _stateDir = Path.GetFullPath(stateDir);
    }

    /// <summary>The NativeAOT worker the daemon's build publishes beside it (src/Connectias.Sandbox.Daemon/NativeWorker.targets).</summary>
    public static string NativeWorkerPath => Path.Combine(AppContext.BaseDirectory, "worker-native", "connectias-sandbox-worker");

    /// <summary>What is started and why, for the log: "PATH (native, NativeAOT)", "DOTNET DLL (jit, ...)".</summary>
    public string Worker => $"{_workerExecutable ?? $"{_dotnet} {_workerDll}"} ({_origin})";

    private string WorkerDirectory => Path.GetDirectoryName(_workerExecutable ?? _workerDll)!;

    /// <summary>The directory of the dotnet host, links resolved (e.g. /usr/share/dotnet).</summary>
    private string DotnetRoot => Path.GetDirectoryName(new FileInfo(_dotnet).ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? Path.GetFullPath(_dotnet))!;

    /// <summary>The worker's command: a self-contained executable, or the dotnet host and the worker's DLL.</summary>
    private IEnumerable<string> WorkerCommand() => _workerExecutable is not null ? [_workerExecutable] : [_dotnet, _workerDll];

    public ProcessStartInfo Plain(string socket)
    {
        // setsid(1) execs the worker as the leader of a new process group, so one kill(-pid) ends it and anything it starts.
        var command = WorkerCommand().ToList();
        var setsid = File.Exists("/usr/bin/setsid");
        var start = new ProcessStartInfo(setsid ? "/usr/bin/setsid" : command[0]);
        foreach (var part in setsid ? command : command.Skip(1)) start.ArgumentList.Add(part);
        start.ArgumentList.Add("--socket");
        start.ArgumentList.Add(socket);
        start.ArgumentList.Add(WorkerHandshake.WatchStdinFlag);
        start.ArgumentList.Add("--parent-pid");
        start.ArgumentList.Add(Environment.ProcessId.ToString(CultureInfo.InvariantCulture));
        start.Environment.Clear();
        foreach (var (key, value) in WorkerEnvironment()) start.Environment[key] = value;
        return start;
    }

    public ProcessStartInfo Bubblewrap(string runDirectory, string? storageDirectory, string socket)
    {
        var start = new ProcessStartInfo("bwrap");
        string[] sandbox =
        [
            "--die-with-parent", "--new-session",
            "--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
            "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp",
            "--tmpfs", _stateDir, // audit log, keys and other plugins' storage stay out of sight
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

        foreach (var argument in new[] { "--" }.Concat(WorkerCommand()).Concat(["--socket", socket, WorkerHandshake.WatchStdinFlag])) start.ArgumentList.Add(argument);
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

    private static string FindDotnet()
    {
        if (Environment.ProcessPath is { } self && Path.GetFileNameWithoutExtension(self) == "dotnet") return self;
        foreach (var candidate in new[] { Environment.GetEnvironmentVariable("DOTNET_HOST_PATH"), "/usr/share/dotnet/dotnet", "/usr/lib/dotnet/dotnet", "/usr/local/share/dotnet/dotnet", "/usr/bin/dotnet" })
            if (!string.IsNullOrEmpty(candidate) && File.Exists(candidate)) return candidate;
        return "dotnet";
    }
}
