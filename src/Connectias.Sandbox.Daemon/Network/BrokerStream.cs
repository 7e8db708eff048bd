using Connectias.Sandbox.Daemon.Hosting;
using Connectias.Sandbox.Worker.V1;
using Connectias.Sandbox.WorkerProtocol;
using Google.Protobuf;

namespace Connectias.Sandbox.Daemon.Network;

/// <summary>
/// The daemon's end of a worker's network traffic: the worker sends one BrokerCall per <c>http_request</c> over
/// its connection, the daemon performs it with the plugin's <see cref="NetworkBroker"/> and answers with a
/// BrokerReply of the same id.
/// </summary>
internal static class BrokerStream
{
    /// <summary>
    /// Answers the worker's BrokerCalls from now on (set before Load, so the worker may link <c>http_request</c>).
    /// <paramref name="networkLifetime"/> ends requests in flight, which happens first when the daemon ends a worker.
    /// </summary>
    public static void Attach(WorkerConnection connection, NetworkBroker broker, BackgroundTasks tasks, string pluginId, CancellationToken networkLifetime)
    {
        var unanswered = 0;
        connection.OnBrokerCall = (id, call) =>
        {
            // http_request blocks the plugin's only thread until it is answered: a second call meanwhile is not a
            // worker's doing but a flood, and a protocol violation.
            if (Interlocked.Increment(ref unanswered) > 1) throw new WorkerProtocolException("a second BrokerCall while one is unanswered");
            tasks.Run($"network request of {pluginId}", async () =>
            {
                (int Code, byte[] Response) answer;
                try
                {
                    answer = await broker.HandleAsync(call.RequestJson.ToByteArray(), TimeSpan.FromMilliseconds(call.DeadlineMs), networkLifetime);
                }
                finally
                {
                    Interlocked.Decrement(ref unanswered); // before the reply: the worker's next call may follow it at once
                }

                connection.Post(new WorkerRequest { Id = id, BrokerReply = new BrokerReply { Code = answer.Code, ResponseJson = ByteString.CopyFrom(answer.Response) } });
            });
        };
    }
}
