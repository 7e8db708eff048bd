using System.Net.Sockets;
using Connectias.Sandbox;
using Connectias.Sandbox.Audit;
using Connectias.Sandbox.Daemon.Api;
using Connectias.Sandbox.Daemon.Calls;
using Connectias.Sandbox.Daemon.Events;
using Connectias.Sandbox.Daemon.Hosting;
using Connectias.Sandbox.Daemon.Lifecycle;
using Connectias.Sandbox.Daemon.Network;
using Connectias.Sandbox.Daemon.Plugins;
using Connectias.Sandbox.Daemon.Policy;
using Connectias.Sandbox.Daemon.Supervision;
using Connectias.Sandbox.Daemon.Telemetry;
using Connectias.Sandbox.Daemon.Workers;
using Connectias.Sandbox.Packaging;
using Grpc.Health.V1;
using Grpc.HealthCheck;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Options;

// The composition root: checks the command line and settings, prepares the state directory, wires the rooms
// together (docs/architecture.md) and runs until SIGTERM/SIGINT.
if (CommandLine.AsksForHelp(args))
{
    Console.WriteLine(CommandLine.Usage);
    return 0;
}

var normalized = CommandLine.Normalize(args);
if (CommandLine.UnknownOption(normalized) is { } unknown)
{
    Console.Error.WriteLine($"connectias-sandboxd: unknown option '{unknown}' (see --help)");
    return 2;
}

var builder = WebApplication.CreateSlimBuilder(Array.Empty<string>());
builder.Configuration.AddCommandLine(normalized, CommandLine.Switches.ToDictionary());
builder.Logging.ClearProviders();
builder.Logging.AddJsonConsole(log =>
{
    log.TimestampFormat = "yyyy-MM-dd'T'HH:mm:ss.fff'Z'";
    log.UseUtcTimestamp = true;
});
builder.Logging.AddFilter("Microsoft", LogLevel.Warning);
builder.Logging.AddFilter("Grpc", LogLevel.Warning);

if (StartupChecks.UnknownSettings(builder.Configuration) is { Count: > 0 } unknownSettings)
{
    foreach (var problem in unknownSettings) Console.Error.WriteLine($"connectias-sandboxd: {problem}");
    return 2;
}

if (StartupChecks.KestrelSettings(builder.Configuration) is { } kestrelSettings)
{
    Console.Error.WriteLine($"connectias-sandboxd: {kestrelSettings}");
    return 2;
}

var section = builder.Configuration.GetSection(DaemonOptions.Section);
DaemonOptions options;
try
{
    options = section.Get<DaemonOptions>() ?? new DaemonOptions();
}
catch (InvalidOperationException e)
{
    // A value that is not of its setting's type (Sandbox__MaxPlugins=lots): the binder names the setting.
    Console.Error.WriteLine($"connectias-sandboxd: {e.Message}{(e.InnerException is { } inner ? $" ({inner.Message})" : "")}");
    return 2;
}

if (new DaemonOptionsValidator().Validate(null, options) is { Failed: true } invalid)
{
    foreach (var failure in invalid.Failures) Console.Error.WriteLine($"connectias-sandboxd: {failure}");
    return 2;
}

options.StateDir = Path.GetFullPath(options.StateDir);

if (options.WorkerExecutable is { Length: > 0 } workerExecutable && !File.Exists(workerExecutable))
{
    Console.Error.WriteLine($"connectias-sandboxd: Sandbox:WorkerExecutable '{workerExecutable}' does not exist");
    return 1;
}

if (options.WorkerExecutable is not { Length: > 0 } && options.WorkerRuntime == "native" && !File.Exists(WorkerCommandLine.NativeWorkerPath))
{
    // A build without the NativeAOT toolchain (-p:ConnectiasNativeWorker=false) ships only the JIT worker.
    Console.Error.WriteLine($"connectias-sandboxd: Sandbox:WorkerRuntime is native, but the native worker {WorkerCommandLine.NativeWorkerPath} is missing; "
        + "build the daemon with the NativeAOT toolchain (apt-get install clang zlib1g-dev), or set Sandbox:WorkerRuntime=jit");
    return 1;
}

if (options.TrustDir is { Length: > 0 } trustDir && !Directory.Exists(trustDir))
{
    // A missing trust store would mean "trust nothing" and refuse every signed package: say so instead.
    Console.Error.WriteLine($"connectias-sandboxd: Sandbox:TrustDir '{trustDir}' does not exist; create it and put the trusted public keys in it");
    return 1;
}

TcpListenerSetup? tcpListener;
try
{
    tcpListener = TcpListenerSetup.Prepare(options);
}
catch (InvalidDataException e)
{
    Console.Error.WriteLine($"connectias-sandboxd: {e.Message}");
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
if (StateDirectory.SocketDirectoryProblem(Path.GetDirectoryName(socket)!) is { } socketProblem)
{
    Console.Error.WriteLine($"connectias-sandboxd: Sandbox:Socket '{socket}': {socketProblem}");
    return 1;
}

StateDirectory.CreatePrivate(options.StateDir);
StateDirectory.CreatePrivate(Path.Combine(options.StateDir, "run"));
if (!Directory.Exists(Path.GetDirectoryName(socket))) StateDirectory.CreatePrivate(Path.GetDirectoryName(socket)!);
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

var developmentKey = options.DevelopmentKey ? DevelopmentKey.Ensure(options) : null;
AuditLog auditLog;
try
{
    auditLog = new AuditLog(SandboxPaths.AuditDirectory(options.StateDir)); // cuts off a record left unfinished, so the check below sees whole ones
}
catch (Exception e) when (e is IOException or UnauthorizedAccessException)
{
    Console.Error.WriteLine($"connectias-sandboxd: cannot open the audit log in {SandboxPaths.AuditDirectory(options.StateDir)}: {e.Message}");
    return 1;
}

var auditAtStart = StartupChecks.VerifyAuditLog(options.StateDir);

// Options: the same validator again at host start, so nothing resolved later sees an unchecked value.
builder.Services.AddOptions<DaemonOptions>().Bind(section).PostConfigure(o => o.StateDir = options.StateDir).ValidateOnStart();
builder.Services.AddSingleton<IValidateOptions<DaemonOptions>, DaemonOptionsValidator>();
builder.Services.AddSingleton(services => services.GetRequiredService<IOptions<DaemonOptions>>().Value);
builder.Services.AddSingleton(policy);
builder.Services.AddSingleton(auditLog);
builder.Services.AddSingleton<BackgroundTasks>();
builder.Services.AddSingleton<EventHub>();
builder.Services.AddSingleton<AuditTrail>();
builder.Services.AddSingleton<RepeatedAuditRecords>();
builder.Services.AddSingleton<PluginLifecycle>();
builder.Services.AddSingleton<PluginRegistry>();
builder.Services.AddSingleton(_ => new QueuedBytes(options.QueueBytesTotal));
builder.Services.AddSingleton<WorkerLauncher>();
builder.Services.AddSingleton<WorkerStopper>();
builder.Services.AddSingleton<CompiledModuleCache>();
builder.Services.AddSingleton<WarmWorkerPool>();
builder.Services.AddSingleton<WorkerSource>();
builder.Services.AddSingleton<WorkerLoader>();
builder.Services.AddSingleton<WorkerOutput>();
builder.Services.AddSingleton<NetworkRefusalReporter>();
builder.Services.AddSingleton<RestartScheduler>();
builder.Services.AddSingleton<PluginSupervisor>();
builder.Services.AddSingleton<PluginLoader>();
builder.Services.AddSingleton<PluginUnloader>();
builder.Services.AddSingleton<PluginUpgrader>();
builder.Services.AddSingleton<PluginCalls>();
builder.AddDaemonTelemetry(options);
builder.Services.AddHostedService<ResourceMonitor>();
builder.Services.AddHostedService(services => services.GetRequiredService<WarmWorkerPool>()); // stopped after the unloads
builder.Services.AddHostedService<ShutdownService>(); // stopped first (reverse order): unloads before the monitor stops
builder.Services.AddSingleton<HealthServiceImpl>();
builder.Services.AddGrpc(grpc =>
{
    grpc.Interceptors.Add<ErrorInterceptor>();
    // A request holds at most a whole package at the package limit and its few other fields: anything larger is
    // refused (RESOURCE_EXHAUSTED) by gRPC before it is buffered whole, instead of 80 MiB per request.
    grpc.MaxReceiveMessageSize = DaemonOptions.MaxRequestBytes;
    grpc.MaxSendMessageSize = Connectias.Sandbox.Contracts.UnixSocketChannel.MaxMessageBytes;
});
builder.Services.AddGrpcReflection();
builder.WebHost.ConfigureKestrel(kestrel =>
{
    kestrel.ListenUnixSocket(socket, listen => listen.Protocols = HttpProtocols.Http2);
    tcpListener?.Listen(kestrel);
    kestrel.Limits.MaxRequestBodySize = null;
});
builder.Services.Configure<HostOptions>(host => host.ShutdownTimeout = TimeSpan.FromSeconds(30));
builder.Host.UseSystemd(); // under systemd only: READY=1 once the socket listens, journal-friendly log lines

var app = builder.Build();
app.UseDaemonTelemetry(options);
app.MapGrpcService<PluginHostService>();
app.MapGrpcService<HealthServiceImpl>();
app.MapGrpcReflectionService();

var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Connectias.Sandbox.Daemon.Hosting");
StartupSweep.Run(options.StateDir, logger);
WorkerLauncher launcher;
try
{
    launcher = app.Services.GetRequiredService<WorkerLauncher>();
}
catch (InvalidOperationException e)
{
    Console.Error.WriteLine($"connectias-sandboxd: {e.Message}");
    return 1;
}

var audit = app.Services.GetRequiredService<AuditTrail>();
await app.StartAsync();
File.SetUnixFileMode(socket, UnixFileMode.UserRead | UnixFileMode.UserWrite);
var health = app.Services.GetRequiredService<HealthServiceImpl>();
health.SetStatus("", HealthCheckResponse.Types.ServingStatus.Serving);
health.SetStatus("connectias.sandbox.v1.PluginHost", HealthCheckResponse.Types.ServingStatus.Serving);
// A chain already broken at start is a degraded audit log, not a daemon that cannot serve: its own health entry says so.
health.SetStatus(StartupChecks.AuditHealthService, auditAtStart is { Intact: false }
    ? HealthCheckResponse.Types.ServingStatus.NotServing
    : HealthCheckResponse.Types.ServingStatus.Serving);

audit.Record(AuditEvents.DaemonStart, "", json =>
{
    json.WriteString("version", CoreVersion.Current);
    json.WriteString("socket", socket);
    json.WriteString("state_dir", options.StateDir);
    json.WriteString("trust_dir", options.ResolvedTrustDir);
    json.WriteString("policy", policy.Source);
    json.WriteBoolean("allow_unsigned", options.AllowUnsigned);
    json.WriteString("sandbox", launcher.UseBubblewrap ? "bubblewrap" : "process");
    if (tcpListener is not null)
    {
        json.WriteString("tcp", tcpListener.Address);
        json.WriteString("tcp_security", tcpListener.Security);
    }
});
audit.RecordRecoveryAtStart();
if (auditAtStart is { Intact: false } broken)
{
    logger.LogError("audit log hash chain broken at line {Line} (record seq {Seq}): {Problem}; {Records} records before it verify. " +
                    "New records continue after it; health service {Service} reports NOT_SERVING", broken.BadLine, broken.BadSeq, broken.Problem, broken.Records, StartupChecks.AuditHealthService);
    audit.Record(AuditEvents.AuditChainBroken, "", json =>
    {
        if (broken.BadLine is { } line) json.WriteNumber("first_bad_line", line);
        if (broken.BadSeq is { } seq) json.WriteNumber("first_bad_seq", seq);
        json.WriteNumber("intact_records", broken.Records);
        json.WriteString("problem", broken.Problem);
    });
}

foreach (var warning in TrustStore.Load(options.ResolvedTrustDir).Warnings) logger.LogWarning("trust store: {Warning}", warning);
if (developmentKey is not null) logger.LogWarning("the local development key {Fingerprint} is trusted (disable with --no-dev-key)", developmentKey);
if (options.AllowUnsigned) logger.LogWarning("unsigned packages are accepted (--allow-unsigned)");
foreach (var warning in tcpListener?.Warnings ?? []) logger.LogWarning("{Warning}", warning);
logger.LogInformation("connectias-sandboxd {Version} listening on {Socket}{Tcp}; state {StateDir}; policy {Policy}; sandbox {Sandbox}",
    CoreVersion.Current, socket, tcpListener is null ? "" : $" and {tcpListener.Description}", options.StateDir, policy.Source, launcher.Description);

await app.WaitForShutdownAsync();
health.SetStatus("", HealthCheckResponse.Types.ServingStatus.NotServing);
audit.Record(AuditEvents.DaemonStop, "");
if (audit.LostRecords > 0) logger.LogError("{Lost} audit record(s) could not be written while this daemon ran", audit.LostRecords);
auditLog.Dispose();
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
