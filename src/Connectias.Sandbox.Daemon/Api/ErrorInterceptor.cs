using Grpc.Core;
using Grpc.Core.Interceptors;

namespace Connectias.Sandbox.Daemon.Api;

/// <summary>Turns every SandboxException into the SPEC status with google.rpc.ErrorInfo, in one place.</summary>
internal sealed class ErrorInterceptor : Interceptor
{
    public override async Task<TResponse> UnaryServerHandler<TRequest, TResponse>(TRequest request, ServerCallContext context, UnaryServerMethod<TRequest, TResponse> continuation)
    {
        try
        {
            return await continuation(request, context);
        }
        catch (SandboxException e)
        {
            throw Contracts.ErrorStatus.ToRpcException(e);
        }
    }

    public override async Task ServerStreamingServerHandler<TRequest, TResponse>(TRequest request, IServerStreamWriter<TResponse> responseStream, ServerCallContext context, ServerStreamingServerMethod<TRequest, TResponse> continuation)
    {
        try
        {
            await continuation(request, responseStream, context);
        }
        catch (SandboxException e)
        {
            throw Contracts.ErrorStatus.ToRpcException(e);
        }
    }
}
