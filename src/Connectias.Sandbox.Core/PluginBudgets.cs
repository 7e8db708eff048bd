namespace Connectias.Sandbox;

/// <summary>
/// What a plugin may cost the host besides its <see cref="ResourceLimits"/>: log lines and bytes, and entries in its
/// key-value store. Unlike the limits these are the operator's alone (daemon settings <c>Sandbox:PluginLog*</c> and
/// <c>Sandbox:StorageMaxEntries</c>, the same for every plugin); neither a manifest nor the policy sets them, and a
/// plugin is not told them. The defaults here are the only ones: the daemon's settings and the worker start from them.
/// </summary>
public sealed record PluginBudgets
{
    public static readonly PluginBudgets Defaults = new();

    /// <summary>A log line longer than this is cut; the rest of it is dropped (not a setting).</summary>
    public const int MaxLogLineBytes = 8 * 1024;

    // A plugin logs a handful of lines per call; 200 lines or 64 KiB (eight lines cut at 8 KiB) leave room for a
    // verbose debugging call and stop a flood after a few hundred lines instead of hundreds of thousands.
    public int LogLinesPerCall { get; init; } = 200;
    public long LogBytesPerCall { get; init; } = 64 * 1024;

    // About 33 lines a second sustained: a plugin answering several calls a second, each with a few lines, fits;
    // a plugin flooding through many small calls adds at most 1 MiB a minute to the daemon's log.
    public int LogLinesPerMinute { get; init; } = 2000;
    public long LogBytesPerMinute { get; init; } = 1024 * 1024;

    // Each entry is a file: this bounds the plugin's inodes and directory size whatever its quota. The default
    // quota (10 MiB at one 4 KiB block or more per entry) allows 2560 entries; this binds only larger quotas.
    public int StorageMaxEntries { get; init; } = 10_000;
}
