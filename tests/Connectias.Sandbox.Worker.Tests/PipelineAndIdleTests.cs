using Connectias.Sandbox.Worker.V1;
using Google.Protobuf;

namespace Connectias.Sandbox.Worker.Tests;

/// <summary>Calls sent without waiting for replies, calls skipped before their turn, and a worker that does nothing while idle.</summary>
public class PipelineAndIdleTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task Calls_sent_back_to_back_run_in_order_and_each_reply_answers_its_own_call()
    {
        using var worker = WorkerProcess.Start();
        Assert.Null(worker.Client.Load(WorkerRequests.Load("hello", worker.Scratch("storage"), "storage", "system_info")).Fault);

        var replies = Enumerable.Range(0, 200)
            .Select(i => worker.Connection.ExecuteAsync(new ExecuteRequest { Command = "echo", Args = ByteString.CopyFromUtf8($"call {i}") }, Patience))
            .ToList();
        var answers = await Task.WhenAll(replies).WaitAsync(Patience).ContinueWith(t => t.IsCompletedSuccessfully ? t.Result : throw new InvalidOperationException($"exit {worker.ExitCode}: " + string.Join("\n", worker.StderrLines), t.Exception));
        Assert.Equal(Enumerable.Range(0, 200).Select(i => $"call {i}"), answers.Select(a => a.Output.ToStringUtf8()));
        // The plugin counts its calls: the last echo was its 200th, so they ran one by one.
        Assert.Equal("201", worker.Client.Execute(new ExecuteRequest { Command = "count" }).Output.ToStringUtf8());
    }

    [Fact]
    public async Task A_call_cancelled_before_its_turn_is_skipped_and_never_reaches_the_plugin()
    {
        using var worker = WorkerProcess.Start();
        var load = WorkerRequests.Load("infinite_loop", "");
        load.Limits.FuelPerCall = 1_000_000_000_000;
        load.Limits.TimeoutMs = 30_000;
        Assert.Null(worker.Client.Load(load).Fault);

        // The first call spins until its 1.5 s deadline; the second waits behind it and is cancelled meanwhile.
        var spinning = worker.Connection.ExecuteAsync(new ExecuteRequest { Command = "run", DeadlineUnixMs = InMs(1500) }, Patience);
        var (second, secondReply) = worker.Connection.Send(new WorkerRequest { Execute = new ExecuteRequest { Command = "run" } });
        worker.Connection.Post(new WorkerRequest { Cancel = new CancelRequest { TargetId = second } });

        Assert.Equal("TIMEOUT", (await spinning).Fault.Reason);
        var skipped = (await secondReply.WaitAsync(Patience)).Execute;
        Assert.True(skipped.Skipped);
        Assert.False(skipped.DeadlinePassed);
        Assert.Null(skipped.Fault);
        Assert.Equal(1UL, worker.Client.GetStatus(new GetStatusRequest()).Calls); // only the first ran
    }

    [Fact]
    public void A_call_whose_deadline_passed_before_its_turn_is_skipped()
    {
        using var worker = WorkerProcess.Start();
        Assert.Null(worker.Client.Load(WorkerRequests.Load("hello", worker.Scratch("storage"), "storage", "system_info")).Fault);
        var late = worker.Client.Execute(new ExecuteRequest { Command = "count", DeadlineUnixMs = InMs(-1) });
        Assert.True(late.Skipped && late.DeadlinePassed);
        Assert.Equal("1", worker.Client.Execute(new ExecuteRequest { Command = "count" }).Output.ToStringUtf8());
    }

    [Fact]
    public async Task An_idle_worker_with_a_plugin_loaded_uses_no_CPU_and_does_not_wake_up()
    {
        using var worker = WorkerProcess.Start();
        Assert.Null(worker.Client.Load(WorkerRequests.Load("hello", worker.Scratch("storage"), "storage", "system_info")).Fault);
        for (var i = 0; i < 50; i++) worker.Client.Execute(new ExecuteRequest { Command = "greet", Args = ByteString.CopyFromUtf8("idle") });
        await Task.Delay(TimeSpan.FromSeconds(1.5)); // the JIT's tiering settles

        var before = ProcessCounters.Read(worker.Pid);
        await Task.Delay(TimeSpan.FromSeconds(3));
        var after = ProcessCounters.Read(worker.Pid);

        // Counts, not timings: a 5 ms epoch timer alone would be ~600 wake-ups and several ticks in 3 s.
        Assert.True(after.CpuTicks - before.CpuTicks <= 2, $"an idle worker used {after.CpuTicks - before.CpuTicks} CPU ticks in 3 s");
        Assert.True(after.ContextSwitches - before.ContextSwitches <= 20,
            $"an idle worker's threads woke up {after.ContextSwitches - before.ContextSwitches} times in 3 s");
    }

    private static ulong InMs(int milliseconds) => (ulong)DateTimeOffset.UtcNow.AddMilliseconds(milliseconds).ToUnixTimeMilliseconds();
}
