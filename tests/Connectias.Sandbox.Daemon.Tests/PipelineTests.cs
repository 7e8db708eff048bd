using System.Text;

namespace Connectias.Sandbox.Daemon.Tests;

/// <summary>Many callers over several plugins through the pipelined call path: every answer reaches its own caller.</summary>
[Collection("daemon")]
public sealed class PipelineTests(SharedDaemon shared)
{
    private const string HelloPermissions = ",\"permissions\":[\"storage\",\"system_info\"]";

    [Fact]
    public async Task Answers_never_cross_with_48_callers_over_6_plugins()
    {
        const int Plugins = 6, Callers = 48, CallsEach = 25;
        using var client = shared.Daemon.Client();
        var ids = Enumerable.Range(0, Plugins).Select(p => $"com.test.cross{p}").ToList();
        foreach (var id in ids) await client.LoadAsync(shared.Daemon.Package("hello", id, HelloPermissions));
        try
        {
            var crossed = 0;
            await Task.WhenAll(Enumerable.Range(0, Callers).Select(caller => Task.Run(async () =>
            {
                using var own = shared.Daemon.Client(); // half the callers on their own connection, half sharing one
                var through = caller % 2 == 0 ? own : client;
                for (var call = 0; call < CallsEach; call++)
                {
                    var tag = $"{ids[caller % Plugins]} caller {caller} call {call}";
                    var answer = await through.ExecuteAsync(ids[caller % Plugins], "echo", Encoding.UTF8.GetBytes(tag));
                    if (answer.Output.ToStringUtf8() != tag) Interlocked.Increment(ref crossed);
                }
            })));

            Assert.Equal(0, crossed);
            // Every call ran once, in its plugin: each plugin counts its own calls (this one included).
            foreach (var id in ids)
                Assert.Equal((Callers / Plugins * CallsEach + 1).ToString(), (await client.ExecuteAsync(id, "count")).Output.ToStringUtf8());
        }
        finally
        {
            foreach (var id in ids) await client.UnloadAsync(id);
        }
    }
}

/// <summary>What a plugin puts in an error message cannot break its caller's connection.</summary>
[Collection("daemon")]
public sealed class ErrorMessageTests(SharedDaemon shared)
{
    [Fact]
    public async Task A_64_KiB_error_message_is_cut_in_the_status_and_the_audit_record_and_the_callers_connection_carries_on()
    {
        using var client = shared.Daemon.Client();
        await client.LoadAsync(shared.Daemon.Package("long_error", "com.test.long-error"));
        await client.LoadAsync(shared.Daemon.Package("noop", "com.test.beside-long-error"));
        try
        {
            // Both on one connection, at the same time: the big failure must not take the other call with it.
            var failing = client.ExecuteAsync("com.test.long-error", "run");
            var ordinary = client.ExecuteAsync("com.test.beside-long-error", "run");
            var error = await Assert.ThrowsAsync<SandboxException>(() => failing);
            Assert.Equal(ErrorReason.PluginError, error.Reason);
            Assert.InRange(error.Message.Length, 2048, Contracts.ErrorStatus.MaxStatusMessageChars + 100);
            Assert.Contains("characters in all)", error.Message);
            Assert.Empty((await ordinary).Output);
            Assert.Empty((await client.ExecuteAsync("com.test.beside-long-error", "run")).Output);

            // The audit record keeps the start of the message and its length, not 64 KiB per failed call.
            var record = shared.Daemon.AuditRecords().Last(r => r.Event == "PLUGIN_EXECUTE_FAILED" && r.PluginId == "com.test.long-error");
            Assert.Equal(2048, record.Details.GetProperty("message").GetString()!.Length);
            Assert.True(record.Details.GetProperty("message_length").GetInt32() > 65536);
        }
        finally
        {
            await client.UnloadAsync("com.test.long-error");
            await client.UnloadAsync("com.test.beside-long-error");
        }
    }
}
