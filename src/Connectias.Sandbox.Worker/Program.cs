using Connectias.Sandbox.Worker;
using Connectias.Sandbox.WorkerProtocol;
using Microsoft.AspNetCore.Server.Kestrel.Core;

// Nothing but the handshake may reach stdout: every stray Console.Write goes to stderr instead.
var stdout = new StreamWriter(Console.OpenStandardOutput()) { AutoFlush = true };
Console.SetOut(Console.Error);
var log = new WorkerLog(Console.Error);

string? socketPath = null;
int? parentPid = null;
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
        case "--help" or "-h":
            Console.Error.WriteLine("""
                connectias-sandbox-worker - hosts one Connectias plugin for connectias-sandboxd.

                Started by the daemon, never by hand. Usage (for the daemon):
                  connectias-sandbox-worker --socket PATH [--parent-pid PID]
                with CONNECTIAS_SANDBOX_WORKER set. It serves the internal worker protocol on the Unix
                socket PATH, prints one handshake line on stdout once listening, logs JSON lines on
                stderr, and exits when its parent dies.
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
if (!ParentWatch.Start(expectedParent, useDeathSignal, () => Environment.Exit(3)))
{
    log.Worker("error", $"parent process {expectedParent} is gone (or is not this worker's parent); exiting");
    return 3;
}

if (File.Exists(socketPath)) File.Delete(socketPath);
var builder = WebApplication.CreateSlimBuilder(args);
// One log shape on stderr: the framework's own warnings go through the same writer as the worker's lines.
builder.Logging.ClearProviders();
builder.Logging.AddProvider(new WorkerLogProvider(log));
builder.Logging.AddFilter((category, level) => level >= LogLevel.Warning);
builder.WebHost.ConfigureKestrel(kestrel =>
{
    kestrel.ListenUnixSocket(socketPath, listen => listen.Protocols = HttpProtocols.Http2);
    kestrel.Limits.MaxRequestBodySize = null;
});
builder.Services.AddGrpc(options =>
{
    // A package is at most 64 MiB, so the module in a Load request is too; outputs are capped by the plugin's limit.
    options.MaxReceiveMessageSize = 80 * 1024 * 1024;
    options.MaxSendMessageSize = 80 * 1024 * 1024;
});
builder.Services.AddSingleton(log);
builder.Services.AddSingleton<WorkerState>();

var app = builder.Build();
app.MapGrpcService<WorkerService>();
await app.StartAsync();

stdout.WriteLine(WorkerHandshake.Format(socketPath, Environment.ProcessId));
log.Worker("info", $"worker listening on {socketPath} (parent {expectedParent}, death signal {(useDeathSignal ? "armed" : "off")})");

await app.WaitForShutdownAsync();
if (File.Exists(socketPath)) File.Delete(socketPath);
return 0;
