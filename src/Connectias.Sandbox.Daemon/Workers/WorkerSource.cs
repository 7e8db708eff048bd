using System.Collections.Concurrent;
using Connectias.Sandbox.Daemon.Hosting;

namespace Connectias.Sandbox.Daemon.Workers;

/// <summary>
/// Where a plugin's worker comes from: a warm one from the pool when there is one, else a fresh start. Gives the
/// worker its run directory under the plugin's name and, when the plugin may use storage, its storage directory.
/// </summary>
internal sealed class WorkerSource(DaemonOptions options, WorkerLauncher launcher, WarmWorkerPool pool, WorkerStopper stopper, ILogger<WorkerSource> logger)
{
    // Live workers per plugin that have its storage directory: while one does, its files must stay where they are.
    private readonly ConcurrentDictionary<string, int> _storageUsers = new();

    /// <summary>
    /// A worker for <paramref name="pluginId"/> that handed shake, and the storage directory as the worker sees it
    /// (null without storage). Throws the launcher's SPEC error when no worker can be started.
    /// </summary>
    public async Task<(WorkerHandle Worker, string? StorageDirectory)> AcquireAsync(string pluginId, bool storage, CancellationToken cancellation)
    {
        var storageDirectory = storage ? Path.Combine(options.StateDir, "storage", pluginId) : null;
        if (!storage) return await TakeWarmAsync(pluginId, null) ?? await StartFreshAsync(pluginId, null, cancellation);

        // The directory counts as used from now (not once a worker is found: a fresh start takes a while), so a
        // replacement starting beside the old version, or beside a restart still starting, leaves the files where
        // they are and gets a fresh worker that binds the directory as it is.
        var busy = _storageUsers.AddOrUpdate(pluginId, 1, (_, users) => users + 1) > 1;
        try
        {
            var acquired = (busy ? null : await TakeWarmAsync(pluginId, storageDirectory)) ?? await StartFreshAsync(pluginId, storageDirectory, cancellation);
            _ = acquired.Worker.Stopped.ContinueWith(_ => Release(pluginId), TaskScheduler.Default);
            return acquired;
        }
        catch
        {
            Release(pluginId);
            throw;
        }
    }

    private void Release(string pluginId) => _storageUsers.AddOrUpdate(pluginId, 0, (_, users) => users - 1);

    private async Task<(WorkerHandle Worker, string? StorageDirectory)?> TakeWarmAsync(string pluginId, string? storageDirectory)
    {
        if (pool.TryTake() is not { } worker) return null;
        try
        {
            worker.RenameRunDirectory(Path.Combine(StateDirectory.WorkerRunRoot(options.StateDir), $"{pluginId}-{worker.Number}"));
            string? seenByWorker = null;
            if (worker.StorageSlot is { } slot)
            {
                // Inside the sandbox the slot stays mounted where it was; outside it becomes the plugin's directory.
                if (storageDirectory is not null)
                {
                    StorageSlots.Adopt(slot, storageDirectory, logger);
                    launcher.HandOver(storageDirectory); // what it held came from other workers, perhaps an older daemon's
                    seenByWorker = slot;
                }
                else
                {
                    Directory.Delete(slot, recursive: true); // a plugin without storage keeps nothing it could write to
                }

                worker.StorageSlot = null;
            }
            else if (storageDirectory is not null)
            {
                StateDirectory.CreatePrivate(storageDirectory);
                seenByWorker = storageDirectory; // no sandbox: the worker sees the real path
            }

            return (worker, seenByWorker);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            logger.LogWarning("a warm worker could not take plugin {PluginId} ({Problem}); starting a fresh one", pluginId, e.Message);
            if (worker.TryBeginStopping(null)) await stopper.StopAsync(worker, graceful: false);
            // The slot is empty after a failed hand-over (Adopt put everything back); one that is not keeps what is in it.
            if (worker.StorageSlot is { } slot && Directory.Exists(slot) && !Directory.EnumerateFileSystemEntries(slot).Any()) Directory.Delete(slot);
            return null;
        }
    }

    private async Task<(WorkerHandle Worker, string? StorageDirectory)> StartFreshAsync(string pluginId, string? storageDirectory, CancellationToken cancellation)
    {
        var number = launcher.NextNumber();
        var runDirectory = Path.Combine(StateDirectory.WorkerRunRoot(options.StateDir), $"{pluginId}-{number}");
        StateDirectory.CreatePrivate(runDirectory);
        if (storageDirectory is not null) StateDirectory.CreatePrivate(storageDirectory);
        try
        {
            return (await launcher.StartAsync(number, runDirectory, storageDirectory, cancellation), storageDirectory);
        }
        catch
        {
            StateDirectory.TryDelete(runDirectory, out _);
            throw;
        }
    }
}
