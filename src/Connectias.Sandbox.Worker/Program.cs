using System.Net.Sockets;
using System.Runtime.InteropServices;
using Connectias.Sandbox.Runtime;
using Connectias.Sandbox.Worker;
using Connectias.Sandbox.Worker.Lockdown;
using Connectias.Sandbox.WorkerProtocol;

// Nothing but the handshake may reach stdout: every stray Console.Write goes to stderr instead.
var stdout = new StreamWriter(Console.OpenStandardOutput()) { AutoFlush = true };
Console.SetOut(Console.Error);
var log = new WorkerLog(Console.Error);

string? socketPath = null;
int? parentPid = null;
var watchStdin = false;
var syscallFilter = true;
for (var i = 0; i < args.Length; i++)
{
    switch (args[i])
    {
        case "--socket" when i + 1 < args.Length:
            socketPath = args[++i];
            break;
        case "--parent-pid" when i + 1 < args.Length && int.TryParse(args[i + 1], out var pid):
            parentPid = pid;
            i++;
            break;
        case WorkerHandshake.WatchStdinFlag:
            watchStdin = true;
            break;
        case WorkerHandshake.NoSyscallFilterFlag:
            syscallFilter = false;
            break;
        case "--help" or "-h":
            Console.Error.WriteLine("""
                connectias-sandbox-worker - hosts one Connectias plugin for connectias-sandboxd.

                Started by the daemon, never by hand. Usage (for the daemon):
                  connectias-sandbox-worker --socket PATH [--parent-pid PID] [--watch-stdin] [--no-syscall-filter]
                with CONNECTIAS_SANDBOX_WORKER set. It listens on the Unix socket PATH, prints one handshake
                line on stdout, serves the internal worker protocol on the one connection the daemon makes,
                logs JSON lines on stderr, and exits when that connection closes or its parent dies (with
                --watch-stdin also when its stdin, a pipe the daemon holds, reaches end of file). Once the daemon
                has connected it installs a seccomp allow-list (unless --no-syscall-filter): any other system
                call kills it with SIGSYS.
                """);
            return 0;
        default:
            Console.Error.WriteLine($"connectias-sandbox-worker: unknown argument '{args[i]}' (see --help)");
            return 2;
    }
}

if (Environment.GetEnvironmentVariable(WorkerHandshake.CookieVariable) != WorkerHandshake.CookieValue || socketPath is null)
{
    Console.Error.WriteLine("connectias-sandbox-worker: this program hosts a plugin for connectias-sandboxd and is not run by hand; " +
                            "start the daemon instead (the daemon sets CONNECTIAS_SANDBOX_WORKER and passes --socket).");
    return 2;
}

var expectedParent = parentPid ?? ParentWatch.ParentPid;
var useDeathSignal = Environment.GetEnvironmentVariable(WorkerHandshake.NoDeathSignalVariable) != "1";
if (watchStdin) ParentWatch.WatchStdin(() =>
{
    log.Worker("error", "stdin reached end of file: the daemon is gone; exiting");
    Environment.Exit(3);
});
if (!ParentWatch.Start(expectedParent, useDeathSignal, () =>
    {
        log.Worker("error", $"parent process {expectedParent} exited; exiting");
        Environment.Exit(3);
    }, warning => log.Worker("warning", warning)))
{
    log.Worker("error", $"parent process {expectedParent} is gone (or is not this worker's parent); exiting");
    return 3;
}

if (File.Exists(socketPath)) File.Delete(socketPath);
// SIGTERM (a daemon stopping its worker) ends the process at once, leaving no socket behind. The handler's
// thread waits in the kernel for a signal; it does not poll.
using var onTerminate = PosixSignalRegistration.Create(PosixSignal.SIGTERM, _ =>
{
    File.Delete(socketPath);
    Environment.Exit(0);
});
Socket connection;
using (var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified))
{
    listener.Bind(new UnixDomainSocketEndPoint(socketPath));
    listener.Listen(1);
    stdout.WriteLine(WorkerHandshake.Format(socketPath, Environment.ProcessId, WasmEngine.Fingerprint));
    log.Worker("info", $"worker listening on {socketPath} (parent {expectedParent}, death signal {(useDeathSignal ? "armed" : "off")})");
    // Exactly one connection, the daemon's: nobody else can reach the socket (its directory is the daemon's,
    // mode 0700) and it is gone before any plugin code runs.
    connection = listener.Accept();
}

File.Delete(socketPath);
try
{
    WorkerLockdown.Apply(log, syscallFilter);
}
catch (InvalidOperationException e)
{
    log.Worker("error", $"cannot confine this worker: {e.Message}; exiting");
    return 4;
}

// Nothing is disposed on the way out: a call may still be running on the turns thread, and the process's end frees it all.
new WorkerSession(connection, new WorkerState(log)).Run();
return 0;
