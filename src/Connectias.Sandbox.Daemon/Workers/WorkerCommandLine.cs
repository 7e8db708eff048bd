using System.Diagnostics;
using System.Globalization;
using Connectias.Sandbox.WorkerProtocol;

namespace Connectias.Sandbox.Daemon.Workers;

/// <summary>
/// How a worker process is started. Inside bubblewrap: no network; fresh PID, IPC, UTS and cgroup namespaces; a root
/// that holds only the system libraries, the worker's own files, a private /tmp, /proc and a minimal /dev, its run
/// directory and its storage directory (no /etc, /home, /root, /var or daemon state); --die-with-parent. As root the
/// daemon switches the worker to <see cref="WorkerIdentity"/> with setpriv (empty capability bounding set,
/// no_new_privs); as another user bubblewrap puts it in a new user namespace with every capability dropped. As a plain
/// child (Sandbox=none) it runs in its own process group with the daemon's uid, capabilities dropped when that is root.
/// The environment is cleared either way, and the worker adds its own seccomp filter once connected.
/// </summary>
internal sealed class WorkerCommandLine
{
    private const string Setpriv = "/usr/bin/setpriv";
    private const string TmpBytes = "1048576";
    private readonly string _workerDll;
    private readonly string _dotnet;
    private readonly string? _workerExecutable;
    private readonly string _origin;
    private readonly WorkerIdentity? _identity;
    private readonly bool _root;
    private readonly bool _syscallFilter;

    /// <param name="identity">The uid and gid for workers when the daemon is root; null otherwise.</param>
    public WorkerCommandLine(string? workerExecutable, string workerRuntime, WorkerIdentity? identity, bool syscallFilter)
    {
        _workerDll = Path.Combine(AppContext.BaseDirectory, "connectias-sandbox-worker.dll");
        _dotnet = FindDotnet();
        // Sandbox:WorkerExecutable overrides Sandbox:WorkerRuntime; "native" starts the NativeAOT publish beside the daemon.
        (_workerExecutable, _origin) = workerExecutable is { Length: > 0 } executable
            ? (Path.GetFullPath(executable), "Sandbox:WorkerExecutable")
            : workerRuntime == "native" ? (NativeWorkerPath, "native, NativeAOT") : (null, "jit, through the dotnet host");
        _identity = identity;
        _root = Environment.IsPrivilegedProcess;
        _syscallFilter = syscallFilter;
        if (_root && !File.Exists(Setpriv))
            throw new InvalidOperationException($"{Setpriv} (util-linux) is missing; the daemon runs as root and needs it to start workers without privileges");
    }

    /// <summary>The NativeAOT worker the daemon's build publishes beside it (src/Connectias.Sandbox.Daemon/NativeWorker.targets).</summary>
    public static string NativeWorkerPath => Path.Combine(AppContext.BaseDirectory, "worker-native", "connectias-sandbox-worker");

    /// <summary>What is started and why, for the log: "PATH (native, NativeAOT)", "DOTNET DLL (jit, ...)".</summary>
    public string Worker => $"{_workerExecutable ?? $"{_dotnet} {_workerDll}"} ({_origin})";

    private string WorkerDirectory => Path.GetDirectoryName(_workerExecutable ?? _workerDll)!;

    /// <summary>The directory of the dotnet host, links resolved (e.g. /usr/share/dotnet).</summary>
    private string DotnetRoot => Path.GetDirectoryName(new FileInfo(_dotnet).ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? Path.GetFullPath(_dotnet))!;

    /// <summary>Whether the worker needs the .NET runtime (the JIT worker, or an executable of one's own, which may be an apphost).</summary>
    private bool NeedsDotnet => _workerExecutable != NativeWorkerPath;

    /// <summary>The worker's command: a self-contained executable, or the dotnet host and the worker's DLL.</summary>
    private IEnumerable<string> WorkerCommand() => _workerExecutable is not null ? [_workerExecutable] : [_dotnet, _workerDll];

    /// <summary>The worker's command and arguments, behind setpriv when that is how privileges are dropped.</summary>
    private IEnumerable<string> ConfinedCommand(string socket, IEnumerable<string> setpriv)
    {
        foreach (var part in setpriv) yield return part;
        foreach (var part in WorkerCommand()) yield return part;
        yield return "--socket";
        yield return socket;
        yield return WorkerHandshake.WatchStdinFlag;
        if (!_syscallFilter) yield return WorkerHandshake.NoSyscallFilterFlag;
    }

    /// <summary>
    /// setpriv's arguments for a root daemon: to the worker's uid inside bubblewrap (or, without it, root without a
    /// single capability), clearing groups, inheritable capabilities and the bounding set, with no_new_privs.
    /// </summary>
    private IEnumerable<string> DropPrivileges(bool switchUser)
    {
        if (!_root) return [];
        List<string> command = [Setpriv];
        if (switchUser && _identity is { } identity)
            command.AddRange([$"--reuid={identity.Uid}", $"--regid={identity.Gid}", "--clear-groups"]);
        command.AddRange(["--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--"]);
        return command;
    }

    public ProcessStartInfo Plain(string socket)
    {
        // setsid(1) execs the worker as the leader of a new process group, so one kill(-pid) ends it and anything it starts.
        var command = ConfinedCommand(socket, DropPrivileges(switchUser: false)).ToList();
        var setsid = File.Exists("/usr/bin/setsid");
        var start = new ProcessStartInfo(setsid ? "/usr/bin/setsid" : command[0]);
        foreach (var part in setsid ? command : command.Skip(1)) start.ArgumentList.Add(part);
        start.ArgumentList.Add("--parent-pid");
        start.ArgumentList.Add(Environment.ProcessId.ToString(CultureInfo.InvariantCulture));
        start.Environment.Clear();
        foreach (var (key, value) in WorkerEnvironment()) start.Environment[key] = value;
        return start;
    }

    public ProcessStartInfo Bubblewrap(string runDirectory, string? storageDirectory, string socket)
    {
        var start = new ProcessStartInfo("bwrap");
        List<string> sandbox =
        [
            "--die-with-parent", "--new-session",
            "--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
        ];
        // Not root: bubblewrap's own user namespace, in which it holds capabilities it must not pass on.
        if (!_root) sandbox.AddRange(["--unshare-user", "--cap-drop", "ALL"]);
        sandbox.AddRange(SystemLibraryMounts);
        // /tmp holds at most 1 MiB (RAM a worker could fill that no memory cap counts); /dev is remounted read-only
        // below, so /dev/shm is no such store either (writing a device node is not writing its file system).
        sandbox.AddRange(["--proc", "/proc", "--dev", "/dev", "--size", TmpBytes, "--tmpfs", "/tmp"]);
        // Binaries after /tmp: a checkout under /tmp must show through the private one.
        if (_root) sandbox.AddRange(Mount("--ro-bind", Setpriv));
        if (NeedsDotnet) sandbox.AddRange([.. Mount("--ro-bind", AppContext.BaseDirectory), .. Mount("--ro-bind", DotnetRoot)]);
        sandbox.AddRange([.. Mount("--ro-bind", WorkerDirectory), .. Mount("--bind", runDirectory)]);
        if (storageDirectory is not null) sandbox.AddRange(Mount("--bind", storageDirectory));
        sandbox.AddRange(["--remount-ro", "/dev", "--remount-ro", "/", "--clearenv"]); // the root bubblewrap built, with the mount points in it
        foreach (var (key, value) in WorkerEnvironment()) sandbox.AddRange(["--setenv", key, value]);
        sandbox.Add("--");
        sandbox.AddRange(ConfinedCommand(socket, DropPrivileges(switchUser: true)));
        foreach (var argument in sandbox) start.ArgumentList.Add(argument);
        start.Environment.Clear();
        start.Environment["PATH"] = "/usr/bin:/bin";
        return start;
    }

    /// <summary>
    /// The shared libraries the worker and setpriv load (the C library, libssl for hashing, the loader's cache), as the
    /// host lays them out: /lib and /lib64 are links into /usr on merged-/usr systems and directories elsewhere. Read
    /// once: the layout does not change while the daemon runs.
    /// </summary>
    private static readonly string[] SystemLibraryMounts = [.. SystemLibraries()];

    private static IEnumerable<string> SystemLibraries()
    {
        foreach (var path in new[] { "/usr/lib", "/usr/lib64", "/usr/lib32", "/lib", "/lib64", "/lib32" })
        {
            var info = new DirectoryInfo(path);
            string[] mount = info.LinkTarget is { } link ? ["--symlink", link, path] : info.Exists ? Mount("--ro-bind", path) : [];
            foreach (var part in mount) yield return part;
        }

        foreach (var part in Mount("--ro-bind-try", "/etc/ld.so.cache")) yield return part;
    }

    /// <summary>
    /// Mounts <paramref name="path"/> at the same place, its parent directories made first with mode 0755: bubblewrap
    /// running as root would make them 0700, which a worker with its own uid cannot pass through.
    /// </summary>
    private static string[] Mount(string kind, string path)
    {
        var parent = Path.GetDirectoryName(Path.TrimEndingDirectorySeparator(path));
        return parent is { Length: > 1 } ? ["--perms", "0755", "--dir", parent, kind, path, path] : [kind, path, path];
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
        // The JIT worker: no diagnostics IPC server (a socket and a thread) and no W^X double mapping, which needs
        // memfd_create, a store of RAM outside every memory cap that the system-call filter therefore refuses.
        yield return ("DOTNET_EnableDiagnostics", "0");
        yield return ("DOTNET_EnableWriteXorExecute", "0");
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
