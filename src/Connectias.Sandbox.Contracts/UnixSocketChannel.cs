using System.Net.Sockets;
using Grpc.Net.Client;

namespace Connectias.Sandbox.Contracts;

/// <summary>A gRPC channel to a server listening on a Unix domain socket (the daemon, or a worker).</summary>
public static class UnixSocketChannel
{
    /// <summary>Large enough for a whole package or a plugin's largest output, with room for framing.</summary>
    public const int MaxMessageBytes = 80 * 1024 * 1024;

    public static GrpcChannel Create(string socketPath)
    {
        var handler = new SocketsHttpHandler
        {
            ConnectCallback = async (_, cancellation) =>
            {
                var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                try
                {
                    await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), cancellation);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            },
            EnableMultipleHttp2Connections = true,
        };
        return GrpcChannel.ForAddress("http://localhost", new GrpcChannelOptions
        {
            HttpHandler = handler,
            DisposeHttpClient = true,
            MaxReceiveMessageSize = MaxMessageBytes,
            MaxSendMessageSize = MaxMessageBytes,
        });
    }
}
