using System.Text;
using Connectias.Sandbox.Runtime;
using Connectias.Sandbox.Worker.V1;
using Google.Protobuf;

namespace Connectias.Sandbox.Worker.Tests;

/// <summary>A write is either wholly there after a kill or not at all (the storage's promise).</summary>
public class StorageCrashTests
{
    private const int ValueBytes = 512 * 1024;

    [Fact]
    public async Task A_worker_killed_in_the_middle_of_writes_leaves_every_value_whole()
    {
        var storage = Directory.CreateTempSubdirectory("connectias-crash-").FullName;
        try
        {
            var worker = WorkerProcess.Start();
            var load = WorkerRequests.Load("hello", storage, "storage", "system_info");
            load.Limits.FuelPerCall = 1_000_000_000;
            load.Limits.TimeoutMs = 10_000;
            load.Limits.StorageBytes = 16 << 20;
            Assert.Null(worker.Client.Load(load).Fault);

            var written = 0;
            var writer = Task.Run(() =>
            {
                for (var generation = 0; ; generation++)
                {
                    var value = new string((char)('a' + generation % 26), ValueBytes);
                    try
                    {
                        worker.Client.Execute(new ExecuteRequest { Command = "store", Args = ByteString.CopyFromUtf8("key=" + value) });
                        Interlocked.Increment(ref written);
                    }
                    catch (Exception e) when (e is WorkerProtocol.WorkerConnectionException or ObjectDisposedException)
                    {
                        return; // the worker (or our channel to it) is gone
                    }
                }
            });

            while (Volatile.Read(ref written) < 3) await Task.Delay(5);
            await Task.Delay(Random.Shared.Next(5, 40)); // somewhere in the middle of a write
            worker.Dispose(); // SIGKILL
            await writer;

            var reopened = new PluginStorage(storage, 16 << 20, PluginBudgets.Defaults.StorageMaxEntries);
            Assert.Empty(Directory.GetFiles(storage, "*.tmp-*")); // leftovers of the interrupted write are gone
            var value = reopened.Get("key"u8)!;
            Assert.Equal(ValueBytes, value.Length);
            Assert.True(value.All(b => b == value[0]), "the stored value mixes two writes");
            Assert.Equal(PluginStorage.EntryCost(3, ValueBytes), reopened.UsedBytes);
        }
        finally
        {
            Directory.Delete(storage, recursive: true);
        }
    }
}
