namespace Connectias.Sandbox.Worker;

/// <summary>What the supervisor and the worker agree on besides the proto (see worker.proto).</summary>
public static class WorkerProtocol
{
    public const int Version = 1;

    /// <summary>Set by the supervisor; a worker started without it was started by hand and refuses.</summary>
    public const string CookieVariable = "CONNECTIAS_SANDBOX_WORKER";
    public const string CookieValue = "plugin-worker-v1";

    /// <summary>Diagnostics only: skip the parent-death signal so the watchdog alone is exercised.</summary>
    public const string NoDeathSignalVariable = "CONNECTIAS_WORKER_NO_PDEATHSIG";

    public static string HandshakeLine(string socketPath, int pid) => $"CONNECTIAS-WORKER|{Version}|unix|{socketPath}|{pid}";
}
