using Connectias.Sandbox.Daemon.Hosting;

namespace Connectias.Sandbox.Daemon.Workers;

/// <summary>
/// <c>WarmWorkers</c> workers started ahead of need, handed shake and connected, waiting for a Load: a load then
/// costs the package checks, the module and plugin_init, not a process start. Refilled in the background after each
/// take. A pooled worker is started exactly like a fresh one (same sandbox, same command line); inside bubblewrap it
/// also gets an empty storage slot, which becomes the plugin's storage directory if the plugin may use storage and
/// is removed otherwise (see <see cref="StorageSlots"/>). Pooled workers die with the daemon like any worker and are
/// stopped at shutdown.
/// </summary>
internal sealed class WarmWorkerPool(
    DaemonOptions options, WorkerLauncher launcher, WorkerStopper stopper, BackgroundTasks tasks, ILogger<WarmWorkerPool> logger) : IHostedService
{
    private readonly Queue<WorkerHandle> _ready = new();
    private readonly Lock _sync = new();
    private int _starting;
    private bool _stopped;
    private bool _failing;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        // Slots of a daemon that died: no worker of this daemon has them.
        StateDirectory.TryDelete(Path.Combine(options.StateDir, "storage-pool"), out _);
        Refill();
        return Task.CompletedTask;
    }

    /// <summary>A warm worker, or null when none is ready (the caller starts a fresh one); either way the pool refills.</summary>
    public WorkerHandle? TryTake()
    {
        WorkerHandle? taken = null;
        lock (_sync)
        {
            while (taken is null && _ready.TryDequeue(out var candidate))
            {
                if (IsSound(candidate)) taken = candidate;
                else Discard(candidate, "it died while it waited");
            }

            _failing = false; // a take is a new reason to try again
        }

        Refill();
        return taken;
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        List<WorkerHandle> left;
        lock (_sync)
        {
            _stopped = true;
            left = [.. _ready];
            _ready.Clear();
        }

        await Task.WhenAll(left.Select(StopQuietlyAsync));
    }

    private void Refill()
    {
        lock (_sync)
        {
            if (_stopped || _failing) return;
            for (var missing = options.WarmWorkers - _ready.Count - _starting; missing > 0; missing--)
            {
                _starting++;
                tasks.Run("warm worker", StartOneAsync);
            }
        }
    }

    private async Task StartOneAsync()
    {
        var number = launcher.NextNumber();
        var runDirectory = Path.Combine(StateDirectory.WorkerRunRoot(options.StateDir), $"pool-{number}");
        var slot = launcher.UseBubblewrap ? StorageSlots.Create(options.StateDir, number) : null;
        WorkerHandle? worker = null;
        try
        {
            StateDirectory.CreatePrivate(runDirectory);
            worker = await launcher.StartAsync(number, runDirectory, slot, tasks.Stopping);
            worker.StorageSlot = slot;
        }
        catch (Exception e)
        {
            StateDirectory.TryDelete(runDirectory, out _);
            if (slot is not null) StateDirectory.TryDelete(slot, out _);
            var error = e as SandboxException;
            if (error is null && e is not OperationCanceledException) logger.LogError(e, "starting a warm worker failed");
            else if (error is not null) logger.LogWarning("starting a warm worker failed: {Reason}: {Message}; the pool waits for the next load to try again", error.Reason.WireName(), error.Message);
            lock (_sync)
            {
                _starting--;
                _failing = true;
            }

            return;
        }

        bool keep;
        lock (_sync)
        {
            _starting--;
            keep = !_stopped;
            if (keep) _ready.Enqueue(worker);
        }

        if (!keep) await StopQuietlyAsync(worker);
    }

    private static bool IsSound(WorkerHandle worker) => !worker.Process.HasExited && !worker.Connection.Closed.IsCompleted;

    private void Discard(WorkerHandle worker, string why)
    {
        logger.LogWarning("warm worker {Pid} discarded: {Why}", worker.Pid, why);
        tasks.Run("discarded warm worker", () => StopQuietlyAsync(worker));
    }

    private async Task StopQuietlyAsync(WorkerHandle worker)
    {
        if (worker.TryBeginStopping(null)) await stopper.StopAsync(worker, graceful: false);
        if (worker.StorageSlot is { } slot) StateDirectory.TryDelete(slot, out _);
    }
}

/// <summary>
/// Storage slots of pooled workers, <c>STATE/storage-pool/N</c>, on the same file system as <c>STATE/storage</c>.
/// A bind mount follows the directory, not its name, so a slot renamed to a plugin's storage directory is that
/// directory inside the worker's sandbox too.
/// </summary>
internal static class StorageSlots
{
    public static string Create(string stateDir, int number)
    {
        var slot = Path.Combine(stateDir, "storage-pool", number.ToString(System.Globalization.CultureInfo.InvariantCulture));
        StateDirectory.CreatePrivate(Path.GetDirectoryName(slot)!);
        StateDirectory.CreatePrivate(slot);
        return slot;
    }

    /// <summary>
    /// Makes <paramref name="slot"/> the plugin's storage directory <paramref name="storage"/>, with renames only (no
    /// copy, so a file is never half-moved): the old directory moves into the slot, its entries up beside it, and the
    /// slot takes the directory's name. Any failure puts every entry back under <paramref name="storage"/> and throws;
    /// the slot is then empty (or, if even that failed, named in the log and left alone with the data in it).
    /// </summary>
    public static void Adopt(string slot, string storage, ILogger logger)
    {
        var staging = Path.Combine(slot, ".adopting");
        try
        {
            if (Directory.Exists(storage))
            {
                Directory.Move(storage, staging); // one rename; across file systems it fails here, before anything moved
                foreach (var entry in Directory.EnumerateFileSystemEntries(staging)) MoveEntry(entry, Path.Combine(slot, Path.GetFileName(entry)));
                Directory.Delete(staging);
            }

            StateDirectory.CreatePrivate(Path.GetDirectoryName(storage)!);
            Directory.Move(slot, storage);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            try
            {
                if (Directory.Exists(staging) && !Directory.Exists(storage)) Directory.Move(staging, storage);
                StateDirectory.CreatePrivate(storage);
                foreach (var entry in Directory.EnumerateFileSystemEntries(slot)) MoveEntry(entry, Path.Combine(storage, Path.GetFileName(entry)));
            }
            catch (Exception again) when (again is IOException or UnauthorizedAccessException)
            {
                logger.LogError("storage of {Storage} could not be put back after a failed hand-over ({Problem}); what is left of it is in {Slot}", storage, again.Message, slot);
            }

            throw;
        }
    }

    private static void MoveEntry(string from, string to)
    {
        if (Directory.Exists(from)) Directory.Move(from, to);
        else File.Move(from, to);
    }
}
