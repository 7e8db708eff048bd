namespace Connectias.Sandbox.FakeWorker;

/// <summary>The ways the fake worker misbehaves, chosen with --behaviour NAME.</summary>
public static class Behaviour
{
    /// <summary>Prints a handshake line whose version field is not a number, then waits to be killed.</summary>
    public const string BadHandshake = "bad-handshake";

    /// <summary>Prints nothing and waits to be killed.</summary>
    public const string NoHandshake = "no-handshake";

    /// <summary>Exits with status 1 before printing anything.</summary>
    public const string ExitBeforeHandshake = "exit-before-handshake";

    /// <summary>Hands shake and serves; Load exits the process with <see cref="CrashStatus"/>.</summary>
    public const string ExitDuringLoad = "exit-during-load";

    /// <summary>Hands shake and serves; a second after Load has answered it writes a junk line to stdout.</summary>
    public const string StrayStdout = "stray-stdout";

    /// <summary>Hands shake and serves; Load succeeds, Execute exits the process with <see cref="CrashStatus"/>.</summary>
    public const string CrashMidCall = "crash-mid-call";

    /// <summary>Hands shake and serves; Load succeeds, Execute never returns.</summary>
    public const string HangMidCall = "hang-mid-call";

    /// <summary>Hands shake and serves; Load succeeds after a 256 MiB line on stderr, then calls are answered.</summary>
    public const string HugeStderrLine = "huge-stderr-line";

    /// <summary>The length of that line.</summary>
    public const int HugeLineBytes = 256 * 1024 * 1024;

    /// <summary>Hands shake and serves; Load succeeds after <see cref="FloodLines"/> JSON log lines on stderr, as a worker that ignores its log budget would write.</summary>
    public const string StderrFlood = "stderr-flood";

    /// <summary>How many lines; each says "flood N".</summary>
    public const int FloodLines = 20_000;

    /// <summary>Hands shake and serves; Load never returns (a compile that runs away, say).</summary>
    public const string HangInLoad = "hang-in-load";

    /// <summary>Hands shake and serves; Load succeeds, then it sends a reply to a request the daemon never made.</summary>
    public const string UnsolicitedReply = "unsolicited-reply";

    /// <summary>Hands shake and serves; Load succeeds, and it answers Execute with a frame that announces 2 GiB.</summary>
    public const string HugeFrame = "huge-frame";

    /// <summary>
    /// Hands shake, installs the real worker's seccomp filter, serves; Load succeeds, Execute calls socket(2) as plugin
    /// code that escaped WebAssembly might, and the filter kills the process.
    /// </summary>
    public const string ForbiddenCallInExecute = "forbidden-call-in-execute";

    /// <summary>The same, but Load makes the forbidden call.</summary>
    public const string ForbiddenCallInLoad = "forbidden-call-in-load";

    /// <summary>Hands shake and serves; Load touches <see cref="BloatBytes"/> of memory and never returns (it sets no memory cap of its own).</summary>
    public const string BloatInLoad = "bloat-in-load";

    public const int BloatBytes = 256 * 1024 * 1024;

    /// <summary>The exit status of a worker that dies in a call (EX_SOFTWARE).</summary>
    public const int CrashStatus = 70;

    /// <summary>What a stray-stdout worker writes where only the handshake may appear.</summary>
    public const string StrayLine = "fake worker: this line breaks the worker protocol";

    public static readonly IReadOnlySet<string> All = new HashSet<string>(StringComparer.Ordinal)
    {
        BadHandshake, NoHandshake, ExitBeforeHandshake, ExitDuringLoad, StrayStdout, CrashMidCall, HangMidCall, UnsolicitedReply, HugeFrame, HangInLoad, HugeStderrLine, StderrFlood,
        ForbiddenCallInExecute, ForbiddenCallInLoad, BloatInLoad,
    };
}
