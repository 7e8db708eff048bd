namespace Connectias.Sandbox.Daemon.Hosting;

/// <summary>
/// Every daemon setting, bound from the "Sandbox" section of configuration (appsettings.json,
/// environment variables <c>Sandbox__Name</c>, command line) and checked at start by
/// <see cref="DaemonOptionsValidator"/>. The defaults here are the embedded configuration that works with
/// no file at all, and the only place any timeout, budget or daemon limit has its default (the plugin budgets take
/// theirs from Core's <see cref="PluginBudgets"/>, which the worker shares).
/// </summary>
public sealed class DaemonOptions
{
    public const string Section = "Sandbox";

    /// <summary>
    /// The largest gRPC request the daemon reads: a package at SPEC §1's limit (64 MiB) plus 1 MiB for the request's
    /// other fields. Execute's arguments are bounded by it too.
    /// </summary>
    public static readonly int MaxRequestBytes = checked((int)(Packaging.PackageLimits.Default.MaxPackageBytes + 1024 * 1024));

    /// <summary>The values <see cref="Sandbox"/> accepts.</summary>
    public static readonly IReadOnlyList<string> SandboxModes = ["auto", "bubblewrap", "none"];

    /// <summary>The values <see cref="WorkerRuntime"/> accepts.</summary>
    public static readonly IReadOnlyList<string> WorkerRuntimes = ["native", "jit"];

    /// <summary>The values <see cref="OtlpProtocol"/> accepts, as OTEL_EXPORTER_OTLP_PROTOCOL spells them.</summary>
    public static readonly IReadOnlyList<string> OtlpProtocols = ["grpc", "http/protobuf"];

    /// <summary>State directory: audit log, storage, trust store, sockets. Default: ~/.local/state/connectias-sandbox.</summary>
    public string StateDir { get; set; } = SandboxPaths.DefaultStateDirectory();

    /// <summary>The public Unix socket (mode 0600, its directory 0700). Default: STATE/run/sandboxd.sock.</summary>
    public string? Socket { get; set; }

    /// <summary>
    /// Optional TCP listener, e.g. "127.0.0.1:7700"; off unless set. It serves TLS and requires a client certificate
    /// from a CA in <see cref="TlsClientCaDir"/> (SPEC §5), unless <see cref="TcpInsecure"/> says plaintext.
    /// </summary>
    public string? Tcp { get; set; }

    /// <summary>
    /// Serve <see cref="Tcp"/> as plaintext HTTP/2 with no client certificates: anyone who reaches the port has the whole
    /// API. Only an explicit choice (--tcp-insecure), and a warning in the log at every start.
    /// </summary>
    public bool TcpInsecure { get; set; }

    /// <summary>The TCP listener's certificate, PEM; further certificates in the file (intermediates) are sent with it.</summary>
    public string? TlsCertificate { get; set; }

    /// <summary>The private key of <see cref="TlsCertificate"/>, unencrypted PEM (PKCS#8, or PKCS#1 / SEC 1).</summary>
    public string? TlsKey { get; set; }

    /// <summary>
    /// A directory of PEM CA certificates; a TCP client must present a certificate that chains to one of them, and to
    /// nothing else (the system's roots are not trusted here).
    /// </summary>
    public string? TlsClientCaDir { get; set; }

    /// <summary>Trust store directory. Default: STATE/trust.</summary>
    public string? TrustDir { get; set; }

    /// <summary>Policy file (JSON, SPEC §5). Without one the built-in policy applies.</summary>
    public string? Policy { get; set; }

    /// <summary>Accept packages with no signature at all (never ones with a bad signature).</summary>
    public bool AllowUnsigned { get; set; }

    /// <summary>Create a local development signing key on first start and trust it (see the operator's guide).</summary>
    public bool DevelopmentKey { get; set; } = true;

    /// <summary>
    /// Identical audit records that a plugin can repeat at will (a network refusal of the same plugin and rule): the
    /// first is written, the ones within this window after it only counted, and one record with their count is
    /// written when the window closes (or at unload or shutdown). 0 writes every one.
    /// </summary>
    public int AuditRepeatWindowMs { get; set; } = 60_000;

    /// <summary>"auto" (bubblewrap when it works), "bubblewrap" (required), or "none".</summary>
    public string Sandbox { get; set; } = "auto";

    /// <summary>
    /// Which worker the daemon starts from its own directory: "native" (default), the NativeAOT-published
    /// <c>worker-native/connectias-sandbox-worker</c> that the daemon's build publishes (docs/performance.md: a
    /// fraction of the start time, half the memory), or "jit", <c>dotnet connectias-sandbox-worker.dll</c>.
    /// <see cref="WorkerExecutable"/>, when set, overrides both.
    /// </summary>
    public string WorkerRuntime { get; set; } = "native";

    /// <summary>
    /// A self-contained worker executable to start instead of the one <see cref="WorkerRuntime"/> picks from the
    /// daemon's directory, e.g. a NativeAOT publish of one's own.
    /// </summary>
    public string? WorkerExecutable { get; set; }

    /// <summary>
    /// "UID:GID" the workers run as when the daemon runs as root inside bubblewrap (switched by setpriv before the
    /// worker starts, with an empty capability bounding set). The default is nobody:nogroup; a dedicated account
    /// keeps workers apart from anything else that runs as nobody. A daemon that is not root runs its workers under
    /// its own uid inside a new user namespace instead.
    /// </summary>
    public string WorkerUser { get; set; } = "65534:65534";

    /// <summary>
    /// The worker's seccomp allow-list (operator's guide): any other system call kills it, reported as
    /// SECURITY_VIOLATION. Off only to diagnose a worker the filter kills on a new kernel or C library.
    /// </summary>
    public bool WorkerSyscallFilter { get; set; } = true;

    /// <summary>From starting a worker to its handshake line; later is RESOURCE_EXHAUSTED.</summary>
    public int WorkerStartTimeoutMs { get; set; } = 15_000;

    /// <summary>How long Load may take in the worker beyond the plugin's own timeout (compile, instantiate, plugin_init).</summary>
    public int WorkerLoadGraceMs { get; set; } = 30_000;

    /// <summary>For the call in flight and for <c>plugin_cleanup</c> at unload.</summary>
    public int UnloadTimeoutMs { get; set; } = 5_000;

    /// <summary>
    /// The worker enforces a call's deadline itself; the daemon waits this much longer before it declares the
    /// worker hung and kills it.
    /// </summary>
    public int CallGraceMs { get; set; } = 2_000;

    /// <summary>After SIGTERM, how long a worker has to exit before it is killed.</summary>
    public int WorkerStopGraceMs { get; set; } = 2_000;

    /// <summary>The first restart waits this long; each further one within a minute twice as long.</summary>
    public int RestartBackoffMs { get; set; } = 250;

    /// <summary>Restarts of one plugin allowed within a minute (SPEC §5: at most 5); then it stays down.</summary>
    public int RestartsPerMinute { get; set; } = 5;

    /// <summary>Calls waiting for one plugin beyond the one running; more is QUEUE_FULL.</summary>
    public int QueueLimit { get; set; } = 64;

    /// <summary>Bytes of arguments the calls waiting for one plugin may hold (the running one included); more is QUEUE_FULL.</summary>
    public long QueueBytesPerPlugin { get; set; } = 64L * 1024 * 1024;

    /// <summary>Bytes of arguments the calls waiting for all plugins may hold together; more is QUEUE_FULL.</summary>
    public long QueueBytesTotal { get; set; } = 256L * 1024 * 1024;

    /// <summary>
    /// Calls forwarded to one worker before the first of them is answered (they still run one at a time, in order);
    /// 1 waits for each reply before sending the next.
    /// </summary>
    public int WorkerPipelineDepth { get; set; } = 8;

    /// <summary>
    /// Sandboxed workers started ahead and waiting for a load (refilled in the background); 0 starts every worker on
    /// demand. They count against no plugin limit and are stopped at shutdown.
    /// </summary>
    public int WarmWorkers { get; set; } = 2;

    /// <summary>
    /// Compiled code kept under STATE/cache/modules (authenticated, least recently used first out), so a restart or a
    /// reload skips compiling; 0 turns the cache off.
    /// </summary>
    public long ModuleCacheMaxBytes { get; set; } = 256L * 1024 * 1024;

    /// <summary>Plugins loaded at once; more is RESOURCE_EXHAUSTED.</summary>
    public int MaxPlugins { get; set; } = 64;

    /// <summary>How often worker RSS and CPU are sampled from /proc.</summary>
    public int MonitorIntervalMs { get; set; } = 250;

    /// <summary>The process-level memory cap is the plugin's memory_bytes plus this allowance for the worker itself.</summary>
    public long WorkerRssAllowanceBytes { get; set; } = 384L * 1024 * 1024;

    /// <summary>
    /// A worker's memory cap for a plugin of <paramref name="memoryBytes"/>: what the resource monitor holds its RSS to,
    /// and what the worker makes its RLIMIT_DATA before compiling the module.
    /// </summary>
    public long WorkerMemoryCapBytes(long memoryBytes) => memoryBytes + WorkerRssAllowanceBytes;

    /// <summary>
    /// Log lines a plugin may write in one call: its <c>log</c> calls and its stdout and stderr lines, empty ones too;
    /// the rest of the call's lines are dropped, and one line says how many. Enforced in the worker, where the lines are
    /// made. This and the next four default to <see cref="PluginBudgets.Defaults"/>, which the worker shares.
    /// </summary>
    public int PluginLogLinesPerCall { get; set; } = PluginBudgets.Defaults.LogLinesPerCall;

    /// <summary>Bytes of log lines (each cut at 8 KiB) a plugin may write in one call.</summary>
    public long PluginLogBytesPerCall { get; set; } = PluginBudgets.Defaults.LogBytesPerCall;

    /// <summary>Log lines a plugin may write in a minute, over all its calls; the rest are dropped and summed up once a minute.</summary>
    public int PluginLogLinesPerMinute { get; set; } = PluginBudgets.Defaults.LogLinesPerMinute;

    /// <summary>Bytes of log lines a plugin may write in a minute.</summary>
    public long PluginLogBytesPerMinute { get; set; } = PluginBudgets.Defaults.LogBytesPerMinute;

    /// <summary>Entries (one file each) a plugin's key-value store may hold, whatever its quota; more is refused like a full quota.</summary>
    public int StorageMaxEntries { get; set; } = PluginBudgets.Defaults.StorageMaxEntries;

    /// <summary>
    /// The daemon's own backstop behind the worker's budgets, for a worker that no longer keeps them: lines of a worker's
    /// stderr relayed to the daemon's log in a minute; the rest are dropped and counted in one line. Three times
    /// <see cref="PluginLogLinesPerMinute"/> at least, since the daemon's minute and the worker's are not aligned.
    /// </summary>
    public int WorkerLogLinesPerMinute { get; set; } = 6000;

    /// <summary>Characters of messages from a worker's stderr relayed in a minute (three times <see cref="PluginLogBytesPerMinute"/> at least).</summary>
    public long WorkerLogCharsPerMinute { get; set; } = 4L * 1024 * 1024;

    /// <summary>How long an unloaded plugin stays visible in ListPlugins/GetPlugin before the registry forgets it.</summary>
    public int UnloadedRetentionSeconds { get; set; } = 600;

    /// <summary>
    /// Where a Prometheus server scrapes the daemon's metrics, "IP:PORT" (e.g. 127.0.0.1:9464): an extra plaintext
    /// HTTP/1.1 listener serving only <c>/metrics</c>. Off unless set; bind it to loopback or a private interface.
    /// </summary>
    public string? MetricsListen { get; set; }

    /// <summary>
    /// An OpenTelemetry collector's OTLP endpoint (e.g. http://127.0.0.1:4317) that receives the daemon's traces and
    /// metrics. Off unless set: the standard OTEL_EXPORTER_OTLP_ENDPOINT alone does not turn export on, because
    /// sending what plugins do off the host is the operator's decision, not an inherited environment's.
    /// </summary>
    public string? OtlpEndpoint { get; set; }

    /// <summary>"grpc" (an endpoint such as :4317) or "http/protobuf" (:4318; /v1/traces and /v1/metrics are appended).</summary>
    public string OtlpProtocol { get; set; } = "grpc";

    /// <summary>True when any exporter is configured; otherwise no OpenTelemetry SDK is registered at all.</summary>
    public bool TelemetryEnabled => MetricsListen is { Length: > 0 } || OtlpEndpoint is { Length: > 0 };

    /// <summary>True when any of the TCP listener's TLS settings is given.</summary>
    public bool TlsConfigured => TlsCertificate is not null || TlsKey is not null || TlsClientCaDir is not null;

    public string ResolvedSocket => Socket ?? SandboxPaths.SocketPath(StateDir);
    public string ResolvedTrustDir => TrustDir ?? SandboxPaths.TrustDirectory(StateDir);

    public TimeSpan WorkerStartTimeout => TimeSpan.FromMilliseconds(WorkerStartTimeoutMs);
    public TimeSpan WorkerLoadGrace => TimeSpan.FromMilliseconds(WorkerLoadGraceMs);
    public TimeSpan UnloadTimeout => TimeSpan.FromMilliseconds(UnloadTimeoutMs);
    public TimeSpan CallGrace => TimeSpan.FromMilliseconds(CallGraceMs);
    public TimeSpan WorkerStopGrace => TimeSpan.FromMilliseconds(WorkerStopGraceMs);
    public TimeSpan UnloadedRetention => TimeSpan.FromSeconds(UnloadedRetentionSeconds);
    public TimeSpan AuditRepeatWindow => TimeSpan.FromMilliseconds(AuditRepeatWindowMs);

    /// <summary>The budgets every plugin's worker enforces, as the Load carries them.</summary>
    public PluginBudgets PluginBudgets => new()
    {
        LogLinesPerCall = PluginLogLinesPerCall,
        LogBytesPerCall = PluginLogBytesPerCall,
        LogLinesPerMinute = PluginLogLinesPerMinute,
        LogBytesPerMinute = PluginLogBytesPerMinute,
        StorageMaxEntries = StorageMaxEntries,
    };
}
