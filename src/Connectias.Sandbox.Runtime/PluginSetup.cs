namespace Connectias.Sandbox.Runtime;

/// <summary>Everything the runtime needs to load one plugin. The module bytes are already verified.</summary>
public sealed class PluginSetup
{
    public required string PluginId { get; init; }
    public string Version { get; init; } = "0.0.0";
    public required ReadOnlyMemory<byte> Module { get; init; }

    /// <summary>The module already compiled (from a cache, say); then <see cref="Module"/> is not compiled again. Owned by the load.</summary>
    public CompiledModule? Compiled { get; init; }
    public IReadOnlySet<Permission> Permissions { get; init; } = new HashSet<Permission>();
    /// <summary>The effective limits, after the manifest's requests were capped by policy.</summary>
    public ResourceLimits Limits { get; init; } = ResourceLimits.Defaults;

    /// <summary>The operator's log and storage budgets (the daemon's settings), the same for every plugin.</summary>
    public PluginBudgets Budgets { get; init; } = PluginBudgets.Defaults;

    /// <summary>The ctx JSON for plugin_init; built by <see cref="PluginContextJson.Build"/> when null.</summary>
    public byte[]? ContextJson { get; init; }

    /// <summary>Where the key-value store lives; required when <see cref="Permission.Storage"/> is granted.</summary>
    public string? StorageDirectory { get; init; }

    /// <summary>The manifest's commands; null when it declares none (then every command is passed on).</summary>
    public IReadOnlyList<string>? DeclaredCommands { get; init; }

    /// <summary>Performs <c>http_request</c> on the plugin's behalf; null where this host has no broker.</summary>
    public INetworkBroker? NetworkBroker { get; init; }

    public IPluginLog Log { get; init; } = NullPluginLog.Instance;
}

/// <summary>Receives the plugin's log lines: its <c>log</c> calls and its WASI stdout/stderr.</summary>
public interface IPluginLog
{
    void Write(PluginLogLevel level, PluginLogSource source, string message);
}

public enum PluginLogLevel
{
    Trace = 0,
    Debug = 1,
    Info = 2,
    Warning = 3,
    Error = 4,
}

public enum PluginLogSource
{
    Log,
    Stdout,
    Stderr,

    /// <summary>The host's own line about the plugin's log: how many lines a log budget dropped.</summary>
    LogBudget,
}

public sealed class NullPluginLog : IPluginLog
{
    public static readonly NullPluginLog Instance = new();

    public void Write(PluginLogLevel level, PluginLogSource source, string message)
    {
    }
}

/// <summary>The host side of <c>http_request</c> (SPEC §3). Implemented by the supervisor's broker.</summary>
public interface INetworkBroker
{
    /// <summary>Returns 0 and the response JSON, or a negative ABI code (-2 denied, -3 rate limited, ...).</summary>
    (int Code, byte[] Response) Send(ReadOnlySpan<byte> requestJson, TimeSpan remaining);
}

/// <summary>One successful call's result and cost.</summary>
public sealed record ExecutionResult(byte[] Output, long FuelConsumed, long DurationMicroseconds, long MemoryBytes);
