namespace Connectias.Sandbox.TestSupport;

/// <summary>How <see cref="DaemonProcess.Start(DaemonStartInfo)"/> starts connectias-sandboxd.</summary>
public sealed record DaemonStartInfo
{
    /// <summary>Written to STATE/policy.json and passed with --policy; null runs the built-in policy.</summary>
    public string? PolicyJson { get; init; } = "{}";

    /// <summary>Sandbox:* settings, passed as Sandbox__NAME environment variables.</summary>
    public IReadOnlyList<(string Name, string Value)> Settings { get; init; } = [];

    /// <summary>Other environment variables as given, e.g. the OpenTelemetry SDK's OTEL_BSP_SCHEDULE_DELAY.</summary>
    public IReadOnlyList<(string Name, string Value)> Environment { get; init; } = [];

    /// <summary>An existing state directory to start on (a restart after a killed daemon, say); null makes a fresh one.</summary>
    public string? StateDir { get; init; }

    /// <summary>Command-line arguments after the ones every test daemon gets (--state-dir, --policy, --no-dev-key), e.g. --sandbox none.</summary>
    public IReadOnlyList<string> Arguments { get; init; } = [];
}
