using System.Diagnostics;
using Connectias.Sandbox.Daemon.Calls;
using Connectias.Sandbox.Daemon.Hosting;

namespace Connectias.Sandbox.Daemon.Workers;

/// <summary>
/// Ends a worker for good: asks (when graceful) then kills its whole process tree, reaps it, fails the calls
/// still queued, and removes its socket and run directory. The kernel frees the rest.
/// </summary>
internal sealed class WorkerStopper(DaemonOptions options, ILogger<WorkerStopper> logger)
{
    private static readonly TimeSpan ReapTimeout = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Stops <paramref name="worker"/>, which the caller has moved to <see cref="WorkerState.Stopping"/>.
    /// Returns the process tree as it was, for a caller that verifies it is gone.
    /// </summary>
    public async Task<List<int>> StopAsync(WorkerHandle worker, bool graceful)
    {
        worker.Calls.Complete();
        await worker.Lifetime.CancelAsync();
        var process = worker.Process;
        var tree = ProcessTree.WithDescendants(worker.Pid);
        if (graceful && !process.HasExited)
        {
            // SIGTERM to every member: inside bubblewrap the worker is a grandchild and must hear it itself.
            foreach (var pid in tree) ProcessTree.Terminate(pid);
            await WaitForExitAsync(tree, options.WorkerStopGrace);
        }

        if (!process.HasExited || tree.Any(ProcessTree.IsAlive)) ProcessTree.KillTree(worker.Pid);
        foreach (var pid in tree.Where(ProcessTree.IsAlive)) ProcessTree.Kill(pid);
        using (var reap = new CancellationTokenSource(ReapTimeout))
        {
            try
            {
                await process.WaitForExitAsync(reap.Token);
            }
            catch (OperationCanceledException)
            {
                logger.LogError("worker {Pid} did not exit after SIGKILL", worker.Pid);
            }
        }

        // Processes in bubblewrap's PID namespace die with it, a moment after the outer process.
        await WaitForExitAsync(tree, options.WorkerStopGrace);

        worker.Calls.FailPending(CallQueue.StoppedBeforeRunning(worker.EndedBy));
        if (!StateDirectory.TryDelete(worker.RunDirectory, out var problem))
            logger.LogWarning("could not remove {Path}: {Problem}", worker.RunDirectory, problem);
        worker.MarkStopped();
        worker.Dispose();
        return tree;
    }

    private static async Task WaitForExitAsync(List<int> pids, TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        while (pids.Any(ProcessTree.IsAlive) && clock.Elapsed < timeout) await Task.Delay(10);
    }
}
