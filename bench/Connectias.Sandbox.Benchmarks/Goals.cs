namespace Connectias.Sandbox.Benchmarks;

/// <summary>
/// The targets of the cheaper-worker work (issue 9), printed beside each figure so one run says how far
/// off they are. They are goals, not assertions: the benchmark never fails on a figure.
/// </summary>
internal static class Goals
{
    /// <summary>A sequential Execute through daemon and worker costs at most this many bare echo hops at p50.</summary>
    public const double ExecuteP50OverEcho = 2.0;

    /// <summary>32 callers over 4 plugins reach at least this share of the echo's throughput with 32 callers.</summary>
    public const double FourPluginShareOfEcho = 0.5;

    public const double WarmLoadMedianMs = 50;
    public const double ColdLoadMedianMs = 250;

    public const long IdleWorkerRssBytes = 30L * 1024 * 1024;

    /// <summary>CPU of an idle worker as a fraction of one core.</summary>
    public const double IdleWorkerCpuShare = 0.005;

    /// <summary>64 loaded no-op plugins: their workers plus the daemon.</summary>
    public const long SixtyFourPluginsTotalBytes = 2560L * 1024 * 1024;
}
