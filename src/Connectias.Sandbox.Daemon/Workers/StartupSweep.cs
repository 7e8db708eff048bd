using System.Globalization;
using Connectias.Sandbox.Daemon.Hosting;

namespace Connectias.Sandbox.Daemon.Workers;

/// <summary>
/// What a previous daemon on this state directory left when it was killed with SIGKILL: workers still alive
/// (their parent-death signal normally ends them within a second, but not one stopped or started by hand),
/// their sockets and run directories. Removed at start, before this daemon starts workers of its own, and
/// each removal logged.
/// </summary>
internal static class StartupSweep
{
    public static void Run(string stateDir, ILogger logger)
    {
        var root = StateDirectory.WorkerRunRoot(stateDir);
        if (!Directory.Exists(root)) return;
        var prefix = Path.GetFullPath(root) + "/";

        var leftovers = LeftoverWorkers(prefix).ToList();
        foreach (var (pid, commandLine) in leftovers)
        {
            ProcessTree.KillTree(pid);
            logger.LogWarning("start-up sweep: killed leftover worker {Pid} of a previous daemon ({CommandLine})", pid, commandLine);
        }

        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (leftovers.Any(l => ProcessTree.IsAlive(l.Pid)) && clock.Elapsed < TimeSpan.FromSeconds(5)) Thread.Sleep(20);

        foreach (var directory in Directory.EnumerateDirectories(root))
        {
            var socket = Path.Combine(directory, "worker.sock");
            var what = File.Exists(socket) ? "run directory and worker socket" : "run directory";
            if (StateDirectory.TryDelete(directory, out var problem))
                logger.LogWarning("start-up sweep: removed leftover {What} {Path}", what, directory);
            else
                logger.LogError("start-up sweep: could not remove leftover {Path}: {Problem}", directory, problem);
        }
    }

    /// <summary>Processes whose command line names a socket under this state directory's worker run root.</summary>
    private static IEnumerable<(int Pid, string CommandLine)> LeftoverWorkers(string runRootPrefix)
    {
        foreach (var entry in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(entry), NumberStyles.None, CultureInfo.InvariantCulture, out var pid) || pid == Environment.ProcessId) continue;
            string[] arguments;
            try
            {
                arguments = File.ReadAllText(Path.Combine(entry, "cmdline")).Split('\0', StringSplitOptions.RemoveEmptyEntries);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                continue; // gone, or not ours to read
            }

            var socketIndex = Array.IndexOf(arguments, "--socket");
            if (socketIndex >= 0 && socketIndex + 1 < arguments.Length && arguments[socketIndex + 1].StartsWith(runRootPrefix, StringComparison.Ordinal))
                yield return (pid, string.Join(' ', arguments));
        }
    }
}
