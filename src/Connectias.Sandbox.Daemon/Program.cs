using System.Net.Sockets;
using Connectias.Sandbox;
using Connectias.Sandbox.Audit;
using Connectias.Sandbox.Daemon;
using Connectias.Sandbox.Packaging;
using Grpc.Health.V1;
using Grpc.HealthCheck;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Options;

const string Usage = """
    connectias-sandboxd - runs untrusted WebAssembly plugins, one isolated worker process each.

    Usage: connectias-sandboxd [options]

      --socket PATH      public Unix socket (default: STATE/run/sandboxd.sock; mode 0600, directory 0700)
      --state-dir DIR    state: audit log, plugin storage, trust store, sockets
                         (default: $XDG_STATE_HOME/connectias-sandbox or ~/.local/state/connectias-sandbox)
      --trust-dir DIR    trusted public keys and revoked.txt (default: STATE/trust)
      --policy FILE      administrator policy, JSON (default: built-in: storage and system_info granted)
      --allow-unsigned   accept packages with no signature (development only)
      --tcp IP:PORT      also listen on TCP, plaintext HTTP/2 (off by default), e.g. 127.0.0.1:7700
      --sandbox MODE     auto (bubblewrap when it works), bubblewrap, or none (default: auto)
      --no-dev-key       do not create or trust the local development signing key
      -h, --help         show this help

    Every setting can also come from appsettings.json or environment variables (Sandbox__StateDir,
    Sandbox__QueueLimit, ...); see README.md. SIGTERM or SIGINT unloads every plugin and exits 0.
    """;

if (args.Contains("--help") || args.Contains("-h"))
{
    Console.WriteLine(Usage);
    return 0;
}

// Bare switches become key=value pairs for the configuration system.
var normalized = args.Select(arg => arg switch
{
    "--allow-unsigned" => "--allow-unsigned=true",
    "--no-dev-key" => "--no-dev-key=false",
    _ => arg,
}).ToArray();
var switches = new Dictionary<string, string>
{
    ["--socket"] = "Sandbox:Socket",
    ["--state-dir"] = "Sandbox:StateDir",
    ["--trust-dir"] = "Sandbox:TrustDir",
    ["--policy"] = "Sandbox:Policy",
    ["--allow-unsigned"] = "Sandbox:AllowUnsigned",
    ["--tcp"] = "Sandbox:Tcp",
    ["--sandbox"] = "Sandbox:Sandbox",
    ["--no-dev-key"] = "Sandbox:DevelopmentKey",
};
foreach (var arg in normalized.Where(a => a.StartsWith('-')))
{
    var name = arg.Split('=')[0];
    if (!switches.ContainsKey(name))
    {
        Console.Error.WriteLine($"connectias-sandboxd: unknown option '{name}' (see --help)");
        return 2;
    }
}

var builder = WebApplication.CreateSlimBuilder(Array.Empty<string>());
builder.Configuration.AddCommandLine(normalized, switches);
builder.Logging.ClearProviders();
builder.Logging.AddJsonConsole(options => options.TimestampFormat = "yyyy-MM-dd'T'HH:mm:ss.fff'Z' ");
builder.Logging.AddFilter("Microsoft", LogLevel.Warning);
builder.Logging.AddFilter("Grpc", LogLevel.Warning);
var options = builder.Configuration.GetSection(DaemonOptions.Section).Get<DaemonOptions>() ?? new DaemonOptions();
options.StateDir = Path.GetFullPath(options.StateDir);

if (options.Tcp is { Length: > 0 } tcpSetting && (!System.Net.IPEndPoint.TryParse(tcpSetting, out var tcpEndpoint) || tcpEndpoint.Port == 0))
{
    Console.Error.WriteLine($"connectias-sandboxd: --tcp '{tcpSetting}' is not IP:PORT, e.g. 127.0.0.1:7700");
    return 2;
}

if (options.WorkerExecutable is { Length: > 0 } workerExecutable && !File.Exists(workerExecutable))
{
    Console.Error.WriteLine($"connectias-sandboxd: Sandbox:WorkerExecutable '{workerExecutable}' does not exist");
    return 1;
}

AdminPolicy policy;
try
{
    policy = options.Policy is null ? AdminPolicy.BuiltIn : AdminPolicy.Load(options.Policy);
}
catch (InvalidDataException e)
{
    Console.Error.WriteLine($"connectias-sandboxd: {e.Message}");
    return 1;
}

var socket = Path.GetFullPath(options.ResolvedSocket);
PluginSupervisor.CreatePrivateDirectory(options.StateDir);
PluginSupervisor.CreatePrivateDirectory(Path.GetDirectoryName(socket)!);
PluginSupervisor.CreatePrivateDirectory(Path.Combine(options.StateDir, "run"));
Directory.CreateDirectory(options.ResolvedTrustDir);
if (File.Exists(socket))
{
    if (SocketAnswers(socket))
    {
        Console.Error.WriteLine($"connectias-sandboxd: another daemon is already listening on {socket}");
        return 1;
    }

    File.Delete(socket); // left behind by a daemon that was killed
}

var developmentKey = options.DevelopmentKey ? EnsureDevelopmentKey(options) : null;

builder.Services.AddSingleton(Options.Create(options));
builder.Services.AddSingleton(options);
builder.Services.AddSingleton(policy);
builder.Services.AddSingleton(_ => new AuditLog(SandboxPaths.AuditDirectory(options.StateDir)));
builder.Services.AddSingleton<EventHub>();
builder.Services.AddSingleton<WorkerLauncher>();
builder.Services.AddSingleton<PluginSupervisor>();
builder.Services.AddHostedService(services => services.GetRequiredService<PluginSupervisor>());
builder.Services.AddSingleton<HealthServiceImpl>();
builder.Services.AddGrpc(grpc =>
{
    grpc.Interceptors.Add<ErrorInterceptor>();
    grpc.MaxReceiveMessageSize = Connectias.Sandbox.Contracts.UnixSocketChannel.MaxMessageBytes;
    grpc.MaxSendMessageSize = Connectias.Sandbox.Contracts.UnixSocketChannel.MaxMessageBytes;
});
builder.Services.AddGrpcReflection();
builder.WebHost.ConfigureKestrel(kestrel =>
{
    kestrel.ListenUnixSocket(socket, listen => listen.Protocols = HttpProtocols.Http2);
    if (options.Tcp is { Length: > 0 } tcp)
    {
        var endpoint = System.Net.IPEndPoint.Parse(tcp); // validated at start-up
        kestrel.Listen(endpoint, listen => listen.Protocols = HttpProtocols.Http2);
    }

    kestrel.Limits.MaxRequestBodySize = null;
});
builder.Services.Configure<HostOptions>(host => host.ShutdownTimeout = TimeSpan.FromSeconds(30));

var app = builder.Build();
app.MapGrpcService<PluginHostService>();
app.MapGrpcService<HealthServiceImpl>();
app.MapGrpcReflectionService();

var logger = app.Services.GetRequiredService<ILogger<PluginSupervisor>>();
var audit = app.Services.GetRequiredService<AuditLog>();
var launcher = app.Services.GetRequiredService<WorkerLauncher>();
await app.StartAsync();
File.SetUnixFileMode(socket, UnixFileMode.UserRead | UnixFileMode.UserWrite);
var health = app.Services.GetRequiredService<HealthServiceImpl>();
health.SetStatus("", HealthCheckResponse.Types.ServingStatus.Serving);
health.SetStatus("connectias.sandbox.v1.PluginHost", HealthCheckResponse.Types.ServingStatus.Serving);

audit.Append(AuditEvents.DaemonStart, "", json =>
{
    json.WriteString("version", CoreVersion.Current);
    json.WriteString("socket", socket);
    json.WriteString("state_dir", options.StateDir);
    json.WriteString("trust_dir", options.ResolvedTrustDir);
    json.WriteString("policy", policy.Source);
    json.WriteBoolean("allow_unsigned", options.AllowUnsigned);
    json.WriteString("sandbox", launcher.UseBubblewrap ? "bubblewrap" : "process");
});
foreach (var warning in TrustStore.Load(options.ResolvedTrustDir).Warnings) logger.LogWarning("trust store: {Warning}", warning);
if (developmentKey is not null) logger.LogWarning("the local development key {Fingerprint} is trusted (disable with --no-dev-key)", developmentKey);
if (options.AllowUnsigned) logger.LogWarning("unsigned packages are accepted (--allow-unsigned)");
logger.LogInformation("connectias-sandboxd {Version} listening on {Socket}{Tcp}; state {StateDir}; policy {Policy}; sandbox {Sandbox}",
    CoreVersion.Current, socket, options.Tcp is null ? "" : $" and tcp {options.Tcp}", options.StateDir, policy.Source, launcher.Description);

await app.WaitForShutdownAsync();
health.SetStatus("", HealthCheckResponse.Types.ServingStatus.NotServing);
audit.Append(AuditEvents.DaemonStop, "");
audit.Dispose();
if (File.Exists(socket)) File.Delete(socket);
return 0;

static bool SocketAnswers(string path)
{
    using var probe = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
    try
    {
        probe.Connect(new UnixDomainSocketEndPoint(path));
        return true;
    }
    catch (SocketException)
    {
        return false;
    }
}

// A local development signing key (mode 0600) whose public half the daemon trusts, so a newcomer can
// sign and load a plugin at once. `connectias sign` without --key uses the same key.
static string EnsureDevelopmentKey(DaemonOptions options)
{
    var keyPath = SandboxPaths.DevelopmentKey(options.StateDir);
    SigningKey key;
    if (File.Exists(keyPath))
    {
        key = SigningKey.FromPem(File.ReadAllText(keyPath));
    }
    else
    {
        key = SigningKey.Generate(SignatureAlgorithm.Ec);
        using var stream = new FileStream(keyPath, new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite });
        using var writer = new StreamWriter(stream);
        writer.Write(key.ExportPrivateKeyPem());
    }

    using (key)
    {
        File.WriteAllText(Path.Combine(options.ResolvedTrustDir, SandboxPaths.DevelopmentKeyTrustFile), key.ExportPublicKeyPem() + "\n");
        return key.Fingerprint;
    }
}
