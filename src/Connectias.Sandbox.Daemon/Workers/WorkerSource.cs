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
        // A replacement starts beside the old version, which still uses the directory: then a fresh worker binds it as it is.
        var storageBusy = storage && _storageUsers.GetValueOrDefault(pluginId) > 0;
        var acquired = (storageBusy ? null : await TakeWarmAsync(pluginId, storageDirectory)) ?? await StartFreshAsync(pluginId, storageDirectory, cancellation);
        if (storage)
        {
            _storageUsers.AddOrUpdate(pluginId, 1, (_, users) => users + 1);
            _ = acquired.Worker.Stopped.ContinueWith(_ => _storageUsers.AddOrUpdate(pluginId, 0, (_, users) => users - 1), TaskScheduler.Default);
        }

        return acquired;
    }

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
                    StorageSlots.Adopt(slot, storageDirectory);
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
        catch (IOException e)
        {
            logger.LogWarning("a warm worker could not take plugin {PluginId} ({Problem}); starting a fresh one", pluginId, e.Message);
            if (worker.TryBeginStopping(null)) await stopper.StopAsync(worker, graceful: false);
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
