using Connectias.Sandbox.Worker.V1;
using Connectias.Sandbox.WorkerProtocol;

namespace Connectias.Sandbox.FakeWorker;

/// <summary>The worker protocol as a misbehaving worker speaks it: no plugin, only the chosen failure.</summary>
internal static class FakeWorkerSession
{
    private static readonly TimeSpan StrayDelay = TimeSpan.FromSeconds(1);

    public static void Answer(WorkerRequest request, string behaviour, Stream connection, TextWriter stdout)
    {
        switch (request.BodyCase)
        {
            case WorkerRequest.BodyOneofCase.Load:
                if (behaviour == Behaviour.ExitDuringLoad) ProcessExit.Now(Behaviour.CrashStatus);
                if (behaviour == Behaviour.HangInLoad) Thread.Sleep(Timeout.Infinite);
                if (behaviour == Behaviour.ForbiddenCallInLoad) ProcessExit.MakeForbiddenCall();
                if (behaviour == Behaviour.BloatInLoad)
                {
                    var bloat = GC.AllocateUninitializedArray<byte>(Behaviour.BloatBytes, pinned: true);
                    for (var page = 0; page < bloat.Length; page += 4096) bloat[page] = 1; // resident, page by page
                    Thread.Sleep(Timeout.Infinite);
                    GC.KeepAlive(bloat);
                }

                if (behaviour == Behaviour.HugeStderrLine)
                {
                    using var stderr = Console.OpenStandardError();
                    var chunk = new byte[1024 * 1024];
                    Array.Fill(chunk, (byte)'x');
                    for (var written = 0; written < Behaviour.HugeLineBytes; written += chunk.Length) stderr.Write(chunk);
                    stderr.Write("\n"u8);
                }

                if (behaviour == Behaviour.StderrFlood)
                {
                    using var stderr = new StreamWriter(Console.OpenStandardError());
                    for (var i = 0; i < Behaviour.FloodLines; i++) stderr.Write($"{{\"level\":\"info\",\"source\":\"plugin\",\"message\":\"flood {i}\"}}\n");
                }

                Send(connection, new WorkerReply { Id = request.Id, Load = new LoadResponse { MemoryBytes = 65536 } }); // one Wasm page, as the smallest plugin reports
                if (behaviour == Behaviour.StrayStdout)
                {
                    // After the answer, not in it: the load is meant to succeed, and the line to arrive once the plugin is READY.
                    Thread.Sleep(StrayDelay);
                    stdout.WriteLine(Behaviour.StrayLine);
                }

                if (behaviour == Behaviour.UnsolicitedReply)
                {
                    Thread.Sleep(StrayDelay);
                    Send(connection, new WorkerReply { Id = request.Id + 1000, Execute = new ExecuteResponse() });
                }

                break;
            case WorkerRequest.BodyOneofCase.Compile:
                if (behaviour == Behaviour.HangInLoad) Thread.Sleep(Timeout.Infinite);
                Send(connection, new WorkerReply { Id = request.Id, Compile = new CompileResponse { Compiled = request.Compile.Module } });
                break;
            case WorkerRequest.BodyOneofCase.Execute:
                if (behaviour == Behaviour.CrashMidCall) ProcessExit.Now(Behaviour.CrashStatus);
                if (behaviour == Behaviour.ForbiddenCallInExecute) ProcessExit.MakeForbiddenCall();
                // Deaf to everything, like a worker stuck in native code: only a kill ends it.
                if (behaviour == Behaviour.HangMidCall) Thread.Sleep(Timeout.Infinite);
                if (behaviour == Behaviour.HugeFrame)
                {
                    connection.Write([0xff, 0xff, 0xff, 0x7f, 1, 2, 3]);
                    connection.Flush();
                    Thread.Sleep(Timeout.Infinite);
                }

                Send(connection, new WorkerReply { Id = request.Id, Execute = new ExecuteResponse { Output = request.Execute.Args } });
                break;
            case WorkerRequest.BodyOneofCase.Cleanup:
                Send(connection, new WorkerReply { Id = request.Id, Cleanup = new CleanupResponse() });
                break;
            case WorkerRequest.BodyOneofCase.Status:
                Send(connection, new WorkerReply { Id = request.Id, Status = new GetStatusResponse() });
                break;
        }
    }

    private static void Send(Stream connection, WorkerReply reply) => connection.Write(WorkerFrames.Encode(reply));
}
