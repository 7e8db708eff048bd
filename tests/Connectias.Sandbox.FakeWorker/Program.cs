using System.Globalization;
using Connectias.Sandbox.FakeWorker;
using Connectias.Sandbox.WorkerProtocol;
using System.Net.Sockets;
using Connectias.Sandbox.Worker.V1;

// Started like the real worker, plus --behaviour: `fake-worker --behaviour NAME --socket PATH [--parent-pid PID]`.
// stdout carries exactly what the behaviour prints; everything else, the framework's too, goes to stderr.
var stdout = new StreamWriter(Console.OpenStandardOutput()) { AutoFlush = true };
Console.SetOut(Console.Error);

string? behaviour = null, socketPath = null;
int? parentPid = null;
// The daemon's --watch-stdin is a flag without a value; this fake worker watches its parent its own way.
args = args.Where(argument => argument != WorkerHandshake.WatchStdinFlag).ToArray();
for (var i = 0; i + 1 < args.Length; i += 2)
{
    switch (args[i])
    {
        case "--behaviour":
            behaviour = args[i + 1];
            break;
        case "--socket":
            socketPath = args[i + 1];
            break;
        case "--parent-pid":
            parentPid = int.Parse(args[i + 1], CultureInfo.InvariantCulture);
            break;
        default:
            return Usage($"unknown argument '{args[i]}'");
    }
}

if (args.Length % 2 != 0) return Usage($"'{args[^1]}' has no value");
if (behaviour is null || !Behaviour.All.Contains(behaviour)) return Usage($"unknown behaviour '{behaviour}'");
if (socketPath is null) return Usage("no --socket");

if (parentPid is { } parent) ProcessExit.WithParent(parent);
Console.Error.WriteLine($"fake worker: {behaviour}");
switch (behaviour)
{
    case Behaviour.ExitBeforeHandshake:
        return 1;
    case Behaviour.NoHandshake:
        Thread.Sleep(Timeout.Infinite);
        return 0;
    case Behaviour.BadHandshake:
        stdout.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{WorkerHandshake.Prefix}|one|unix|{socketPath}|{Environment.ProcessId}"));
        Thread.Sleep(Timeout.Infinite);
        return 0;
}

if (File.Exists(socketPath)) File.Delete(socketPath);
using var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
listener.Bind(new UnixDomainSocketEndPoint(socketPath));
listener.Listen(1);
stdout.WriteLine(WorkerHandshake.Format(socketPath, Environment.ProcessId, "fake-engine"));
using var connection = new NetworkStream(listener.Accept(), ownsSocket: true);
File.Delete(socketPath);
if (behaviour is Behaviour.ForbiddenCallInExecute or Behaviour.ForbiddenCallInLoad) Connectias.Sandbox.Worker.Lockdown.SyscallFilter.Install();
while (WorkerFrames.Read(connection, WorkerRequest.Parser) is { } request) FakeWorkerSession.Answer(request, behaviour, connection, stdout);
return 0;

static int Usage(string problem)
{
    Console.Error.WriteLine($"fake worker: {problem}; usage: --behaviour {string.Join('|', Behaviour.All)} --socket PATH [--parent-pid PID]");
    return 2;
}
