using Connectias.Sandbox.Daemon.Hosting;
using Connectias.Sandbox.Worker.V1;
using Google.Protobuf;
using Grpc.Core;

namespace Connectias.Sandbox.Daemon.Network;

/// <summary>
/// The daemon's end of a worker's Broker stream: the worker sends one BrokerCall per <c>http_request</c>, the
/// daemon performs it with the plugin's <see cref="NetworkBroker"/> and answers with a BrokerReply of the same id.
/// </summary>
internal static class BrokerStream
{
    /// <summary>
    /// Opens the stream (before Load, so the worker can link <c>http_request</c>) and serves it until the worker
    /// ends. <paramref name="workerLifetime"/> ends the stream; <paramref name="networkLifetime"/> ends requests
    /// in flight, which happens first when the daemon ends a worker on purpose.
    /// </summary>
    public static async Task<IDisposable> OpenAsync(PluginWorker.PluginWorkerClient client, NetworkBroker broker, BackgroundTasks tasks,
        string pluginId, CancellationToken workerLifetime, CancellationToken networkLifetime)
    {
        var stream = client.Broker(cancellationToken: workerLifetime);
        var writeLock = new SemaphoreSlim(1, 1);
        await stream.RequestStream.WriteAsync(new BrokerReply { Id = 0 }); // opens the stream before Load
        tasks.Run($"broker stream of {pluginId}", async () =>
        {
            try
            {
                while (await stream.ResponseStream.MoveNext(workerLifetime))
                {
                    var call = stream.ResponseStream.Current;
                    tasks.Run($"network request of {pluginId}", () => AnswerAsync(stream, writeLock, broker, call, networkLifetime));
                }
            }
            catch (Exception e) when (e is RpcException or InvalidOperationException)
            {
                // the worker ended
            }
        });
        return stream;
    }

    private static async Task AnswerAsync(AsyncDuplexStreamingCall<BrokerReply, BrokerCall> stream, SemaphoreSlim writeLock, NetworkBroker broker,
        BrokerCall call, CancellationToken networkLifetime)
    {
        var (code, response) = await broker.HandleAsync(call.RequestJson.ToByteArray(), TimeSpan.FromMilliseconds(call.DeadlineMs), networkLifetime);
        await writeLock.WaitAsync(CancellationToken.None);
        try
        {
            await stream.RequestStream.WriteAsync(new BrokerReply { Id = call.Id, Code = code, ResponseJson = ByteString.CopyFrom(response) });
        }
        catch (Exception e) when (e is RpcException or InvalidOperationException or ObjectDisposedException)
        {
            // the worker is gone: nobody is waiting for the answer
        }
        finally
        {
            writeLock.Release();
        }
    }
}
