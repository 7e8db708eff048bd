using System.Globalization;

namespace Connectias.Sandbox.WorkerProtocol;

/// <summary>
/// The one line a worker prints on stdout once it listens, <c>CONNECTIAS-WORKER|2|ENGINE|unix|SOCKET|PID</c>,
/// and the environment the supervisor starts it with. ENGINE names the Wasmtime version and engine settings
/// (compiled code is reusable between workers with the same one). Formatted and parsed here only.
/// </summary>
public sealed record WorkerHandshake(int Version, string Engine, string Network, string Address, int Pid)
{
    public const string Prefix = "CONNECTIAS-WORKER";
    public const int CurrentVersion = 2;

    /// <summary>Set by the supervisor; a worker started without it was started by hand and refuses.</summary>
    public const string CookieVariable = "CONNECTIAS_SANDBOX_WORKER";
    public const string CookieValue = "plugin-worker-v1";

    /// <summary>
    /// Tells the worker that its stdin is a pipe whose other end the supervisor holds for the worker's life: end of
    /// file there means the supervisor is gone (however it died, and however early: the pipe exists before the
    /// process does), and the worker exits.
    /// </summary>
    public const string WatchStdinFlag = "--watch-stdin";

    /// <summary>Tells the worker to run without its seccomp filter (Sandbox:WorkerSyscallFilter=false).</summary>
    public const string NoSyscallFilterFlag = "--no-syscall-filter";

    /// <summary>Diagnostics only: skip the parent-death signal so the watchdog alone is exercised.</summary>
    public const string NoDeathSignalVariable = "CONNECTIAS_WORKER_NO_PDEATHSIG";

    /// <summary>Longer than this is not a handshake, whatever it holds.</summary>
    public const int MaxLineLength = 4096;

    public static string Format(string socketPath, int pid, string engine) =>
        string.Create(CultureInfo.InvariantCulture, $"{Prefix}|{CurrentVersion}|{engine}|unix|{socketPath}|{pid}");

    /// <summary>
    /// Parses a handshake line; null with <paramref name="problem"/> saying what is wrong otherwise. The
    /// socket path may itself contain '|': the pid is the last field and the path what lies between.
    /// </summary>
    public static WorkerHandshake? TryParse(string? line, out string problem)
    {
        problem = "";
        if (line is null)
        {
            problem = "no handshake line";
            return null;
        }

        if (line.Length > MaxLineLength)
        {
            problem = $"a line of {line.Length} characters";
            return null;
        }

        var parts = line.Split('|');
        if (parts.Length < 2 || parts[0] != Prefix)
        {
            problem = $"not a handshake: '{Printable(line)}'";
            return null;
        }

        if (!int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var version))
        {
            problem = $"version '{Printable(parts[1])}' is not a number";
            return null;
        }

        // Another version's fields may differ: the version alone is enough to refuse it.
        if (version != CurrentVersion) return new WorkerHandshake(version, "", "", "", 0);
        if (parts.Length < 6)
        {
            problem = $"not a handshake: '{Printable(line)}'";
            return null;
        }

        if (!int.TryParse(parts[^1], NumberStyles.None, CultureInfo.InvariantCulture, out var pid) || pid <= 0)
        {
            problem = $"pid '{Printable(parts[^1])}' is not a process id";
            return null;
        }

        return new WorkerHandshake(version, parts[2], parts[3], string.Join('|', parts[4..^1]), pid);
    }

    /// <summary>Null when this handshake is the one the supervisor waits for on <paramref name="socketPath"/>, else why not.</summary>
    public string? Mismatch(string socketPath) =>
        Version != CurrentVersion ? $"protocol version {Version}, expected {CurrentVersion}"
        : Network != "unix" ? $"network '{Printable(Network)}', expected unix"
        : Address != socketPath ? $"socket '{Printable(Address)}', expected {socketPath}"
        : null;

    private static string Printable(string text)
    {
        var shown = text.Length > 120 ? text[..120] + "..." : text;
        return new string(shown.Select(c => char.IsControl(c) ? '?' : c).ToArray());
    }
}
