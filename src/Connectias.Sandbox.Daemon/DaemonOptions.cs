namespace Connectias.Sandbox.Daemon;

/// <summary>
/// Every daemon setting, bound from the "Sandbox" section of configuration (appsettings.json,
/// environment variables <c>Sandbox__Name</c>, command line). The defaults here are the embedded
/// configuration that works with no file at all.
/// </summary>
public sealed class DaemonOptions
{
    public const string Section = "Sandbox";

    /// <summary>State directory: audit log, storage, trust store, sockets. Default: ~/.local/state/connectias-sandbox.</summary>
    public string StateDir { get; set; } = SandboxPaths.DefaultStateDirectory();

    /// <summary>The public Unix socket (mode 0600, its directory 0700). Default: STATE/run/sandboxd.sock.</summary>
    public string? Socket { get; set; }

    /// <summary>Optional TCP listener, e.g. "127.0.0.1:7700"; off unless set. No TLS: put it behind one.</summary>
    public string? Tcp { get; set; }

    /// <summary>Trust store directory. Default: STATE/trust.</summary>
    public string? TrustDir { get; set; }

    /// <summary>Policy file (JSON, SPEC §5). Without one the built-in policy applies.</summary>
    public string? Policy { get; set; }

    /// <summary>Accept packages with no signature at all (never ones with a bad signature).</summary>
    public bool AllowUnsigned { get; set; }

    /// <summary>Create a local development signing key on first start and trust it (see the operator's guide).</summary>
    public bool DevelopmentKey { get; set; } = true;

    /// <summary>"auto" (bubblewrap when installed), "bubblewrap" (required), or "none".</summary>
    public string Sandbox { get; set; } = "auto";

    /// <summary>
    /// A self-contained worker executable to start instead of <c>dotnet connectias-sandbox-worker.dll</c> from the
    /// daemon's directory, e.g. a NativeAOT publish (docs/performance.md: faster start, half the memory).
    /// </summary>
    public string? WorkerExecutable { get; set; }

    public int WorkerStartTimeoutMs { get; set; } = 15_000;
    public int UnloadTimeoutMs { get; set; } = 5_000;

    /// <summary>Calls waiting for one plugin beyond the one running; more is QUEUE_FULL.</summary>
    public int QueueLimit { get; set; } = 64;

    /// <summary>Plugins loaded at once; more is RESOURCE_EXHAUSTED.</summary>
    public int MaxPlugins { get; set; } = 64;

    /// <summary>How often worker RSS and CPU are sampled from /proc.</summary>
    public int MonitorIntervalMs { get; set; } = 250;

    /// <summary>The process-level memory cap is the plugin's memory_bytes plus this allowance for the worker itself.</summary>
    public long WorkerRssAllowanceBytes { get; set; } = 384L * 1024 * 1024;

    public string ResolvedSocket => Socket ?? SandboxPaths.SocketPath(StateDir);
    public string ResolvedTrustDir => TrustDir ?? SandboxPaths.TrustDirectory(StateDir);
}
