using Connectias.Sandbox.Worker.V1;
using Grpc.Core;

namespace Connectias.Sandbox.FakeWorker;

/// <summary>The PluginWorker service as a misbehaving worker serves it: no plugin, only the chosen failure.</summary>
internal sealed class FakeWorkerService(FakeWorkerOptions options) : PluginWorker.PluginWorkerBase
{
    private static readonly TimeSpan StrayDelay = TimeSpan.FromSeconds(1);

    public override Task<LoadResponse> Load(LoadRequest request, ServerCallContext context)
    {
        if (options.Behaviour == Behaviour.ExitDuringLoad) ProcessExit.Now(Behaviour.CrashStatus);
        if (options.Behaviour == Behaviour.StrayStdout)
        {
            // After the answer, not in it: the load is meant to succeed, and the line to arrive once the plugin is READY.
            _ = Task.Run(async () =>
            {
                await Task.Delay(StrayDelay);
                options.Stdout.WriteLine(Behaviour.StrayLine);
            });
        }

        return Task.FromResult(new LoadResponse { MemoryBytes = 65536 }); // one Wasm page, as the smallest plugin reports
    }

    public override async Task<ExecuteResponse> Execute(ExecuteRequest request, ServerCallContext context)
    {
        if (options.Behaviour == Behaviour.CrashMidCall) ProcessExit.Now(Behaviour.CrashStatus);
        // Deaf to cancellation too, like a worker stuck in native code: only a kill ends it.
        if (options.Behaviour == Behaviour.HangMidCall) await Task.Delay(Timeout.Infinite, CancellationToken.None);
        return new ExecuteResponse { Output = request.Args };
    }
}

/// <summary>The chosen behaviour, and the real stdout (Console.Out is redirected to stderr).</summary>
internal sealed record FakeWorkerOptions(string Behaviour, TextWriter Stdout);
