using System.Text;
using System.Text.Json;

namespace Connectias.Sandbox.Runtime.Tests;

[Collection("engine")]
public class WellBehavedPluginTests(EngineFixture fixture) : RuntimeTestBase(fixture)
{
    private static readonly IReadOnlySet<Permission> All = HelloPermissions;

    private static string Text(ExecutionResult result) => Encoding.UTF8.GetString(result.Output);

    [Fact]
    public void Commands_and_arguments_reach_the_plugin_and_output_comes_back()
    {
        var hello = Load("hello", permissions: All);
        Assert.Equal("Hello, Ada!", Text(hello.Execute("greet", "Ada"u8)));
        var binary = Enumerable.Range(0, 256).Select(i => (byte)i).ToArray();
        Assert.Equal(binary, hello.Execute("echo", binary).Output);
        Assert.Empty(hello.Execute("echo", []).Output);
    }

    [Fact]
    public void State_is_kept_between_calls_of_one_instance()
    {
        var hello = Load("hello", permissions: All);
        Assert.Equal("1", Text(hello.Execute("count", []))); // plugin_init is not a call
        Assert.Equal("2", Text(hello.Execute("count", [])));
        Assert.Equal("3", Text(hello.Execute("count", [])));
        Assert.Equal(3, hello.Calls);
    }

    [Fact]
    public void Every_call_reports_fuel_duration_and_memory()
    {
        var hello = Load("hello", permissions: All);
        var result = hello.Execute("greet", "x"u8);
        Assert.InRange(result.FuelConsumed, 1, ResourceLimits.Defaults.FuelPerCall);
        Assert.True(result.DurationMicroseconds > 0);
        Assert.Equal(hello.MemoryBytes, result.MemoryBytes);
        Assert.True(result.MemoryBytes >= 64 * 1024);
        Assert.True(hello.FuelConsumedTotal >= result.FuelConsumed);
        Assert.True(hello.PeakMemoryBytes >= result.MemoryBytes);
    }

    [Fact]
    public void Storage_sets_gets_deletes_and_survives_a_new_instance()
    {
        var hello = Load("hello", permissions: All);
        Assert.Equal("stored", Text(hello.Execute("store", "city=Zürich"u8)));
        Assert.Equal("Zürich", Text(hello.Execute("load", "city"u8)));
        hello.Dispose();

        var again = Load("hello", permissions: All);
        Assert.Equal("Zürich", Text(again.Execute("load", "city"u8)));
        Assert.Equal("forgotten", Text(again.Execute("forget", "city"u8)));
        Assert.Equal("absent", Text(again.Execute("forget", "city"u8)));
        var missing = Assert.Throws<SandboxException>(() => again.Execute("load", "city"u8));
        Assert.Equal(ErrorReason.PluginError, missing.Reason);
        Assert.Contains("not found", missing.Message);
    }

    [Fact]
    public void Storage_quota_is_enforced_with_too_large()
    {
        // Entries are charged whole blocks of 4 KiB (PluginStorageTests has the arithmetic).
        var hello = Load("hello", limits: ResourceLimits.Defaults with { StorageBytes = 2 * PluginStorage.BlockBytes }, permissions: All);
        Assert.Equal("stored", Text(hello.Execute("store", Encoding.UTF8.GetBytes("k=" + new string('a', 4000))))); // one block
        var error = Assert.Throws<SandboxException>(() => hello.Execute("store", Encoding.UTF8.GetBytes("k2=" + new string('b', 4100)))); // two more
        Assert.Contains("storage_set failed with -5", error.Message);
        // A replacement is charged instead of the old value, not on top of it.
        Assert.Equal("stored", Text(hello.Execute("store", Encoding.UTF8.GetBytes("k=" + new string('c', 4090)))));
        Assert.Equal("stored", Text(hello.Execute("store", "k2=b"u8)));
    }

    [Fact]
    public void System_info_is_json_with_the_spec_fields()
    {
        var info = JsonDocument.Parse(Load("hello", permissions: All).Execute("sysinfo", []).Output).RootElement;
        Assert.Equal("linux", info.GetProperty("os").GetString());
        Assert.Equal(Environment.ProcessorCount, info.GetProperty("cpu_count").GetInt32());
        Assert.Equal(CoreVersion.Current, info.GetProperty("core_version").GetString());
        Assert.False(string.IsNullOrEmpty(info.GetProperty("arch").GetString()));
    }

    [Fact]
    public void Logs_and_wasi_output_become_log_lines()
    {
        var log = new RecordingLog();
        var hello = Load("hello", permissions: All, log: log);
        hello.Execute("log", []);
        var lines = log.Lines;
        Assert.Contains((PluginLogLevel.Info, PluginLogSource.Log, "hello plugin initialised"), lines);
        for (var level = 0; level <= 4; level++)
            Assert.Contains(((PluginLogLevel)level, PluginLogSource.Log, $"log line at level {level}"), lines);
        Assert.Contains(lines, line => line.Source == PluginLogSource.Stdout && line.Message == "printf to stdout 42");
        Assert.Contains(lines, line => line.Source == PluginLogSource.Stderr && line.Message == "fprintf to stderr");
    }

    [Fact]
    public void Plugin_init_receives_the_context_json()
    {
        var context = JsonDocument.Parse(Load("hello", permissions: All).Execute("context", []).Output).RootElement;
        Assert.Equal("com.example.hello", context.GetProperty("plugin_id").GetString());
        Assert.Equal("1.0.0", context.GetProperty("version").GetString());
        Assert.Equal(["storage", "system_info"], context.GetProperty("permissions").EnumerateArray().Select(p => p.GetString()).Order());
        Assert.Equal(ResourceLimits.Defaults.MemoryBytes, context.GetProperty("limits").GetProperty("memory_bytes").GetInt64());
        Assert.Equal(JsonValueKind.Object, context.GetProperty("config").ValueKind);
    }

    [Fact]
    public void A_non_zero_return_is_PLUGIN_ERROR_with_code_and_message_and_the_plugin_stays_usable()
    {
        var hello = Load("hello", permissions: All);
        var error = Assert.Throws<SandboxException>(() => hello.Execute("fail", []));
        Assert.Equal(ErrorReason.PluginError, error.Reason);
        Assert.Equal("42", error.Metadata["plugin_code"]);
        Assert.Contains("failure requested by the caller", error.Message);
        Assert.Null(hello.TerminatedBy);
        Assert.Equal("Hello, again!", Text(hello.Execute("greet", "again"u8)));
    }

    [Fact]
    public void Undeclared_commands_are_refused_without_entering_the_plugin()
    {
        var hello = Load("hello", permissions: All, commands: ["greet", "count"]);
        var error = Assert.Throws<SandboxException>(() => hello.Execute("echo", "x"u8));
        Assert.Equal(ErrorReason.InvalidCommand, error.Reason);
        Assert.Equal("1", Text(hello.Execute("count", []))); // the refused call never ran
    }

    [Fact]
    public void Cleanup_runs_plugin_cleanup_once()
    {
        var log = new RecordingLog();
        var hello = Load("hello", permissions: All, log: log);
        Assert.Equal((true, 0), hello.Cleanup());
        Assert.Contains(log.Lines, line => line.Message == "hello plugin cleaning up");
        Assert.Equal((false, 0), hello.Cleanup());
    }

    [Fact]
    public void A_plugin_without_plugin_cleanup_reports_it_was_not_called() =>
        Assert.Equal((false, 0), Load("noop").Cleanup());

    [Fact]
    public void Ten_thousand_calls_neither_leak_guest_memory_nor_fail()
    {
        var noop = Load("noop");
        var args = new byte[1000];
        for (var i = 0; i < 10_000; i++) noop.Execute("run", args);
        Assert.Equal(64 * 1024, noop.MemoryBytes); // host buffers were freed, so the bump heap never grew
    }
}
