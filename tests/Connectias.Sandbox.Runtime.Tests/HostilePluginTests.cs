using System.Diagnostics;

namespace Connectias.Sandbox.Runtime.Tests;

/// <summary>
/// Every hostile or broken sample plugin, with the exact SPEC reason it must produce, and proof that
/// the runtime still serves afterwards (SPEC §2: the plugin is terminated, nothing else is).
/// </summary>
[Collection("engine")]
public class HostilePluginTests(EngineFixture fixture) : RuntimeTestBase(fixture)
{
    private static readonly ResourceLimits AmpleFuel = ResourceLimits.Defaults with { FuelPerCall = 1_000_000_000_000, TimeoutMs = 300 };

    private static void AssertTerminates(PluginInstance plugin, SandboxException error)
    {
        Assert.Same(error, plugin.TerminatedBy);
        var after = Assert.Throws<SandboxException>(() => plugin.Execute("run", []));
        Assert.Equal(ErrorReason.PluginCrashed, after.Reason);
        Assert.Contains(error.Reason.WireName(), after.Message);
    }

    [Fact]
    public void An_infinite_loop_runs_out_of_fuel()
    {
        var plugin = Load("infinite_loop");
        var error = CallFails(plugin);
        Assert.Equal(ErrorReason.FuelExhausted, error.Reason);
        Assert.Equal("1000000", error.Metadata["limit"]);
        AssertTerminates(plugin, error);
        AssertRuntimeSound();
    }

    [Fact]
    public void An_infinite_loop_with_ample_fuel_hits_its_deadline()
    {
        var plugin = Load("infinite_loop", AmpleFuel);
        var clock = Stopwatch.StartNew();
        var error = CallFails(plugin);
        Assert.Equal(ErrorReason.Timeout, error.Reason);
        Assert.Equal("300", error.Metadata["limit"]);
        Assert.InRange(clock.ElapsedMilliseconds, 250, 3000);
        AssertTerminates(plugin, error);
        AssertRuntimeSound();
    }

    [Fact]
    public void The_callers_deadline_applies_when_it_is_sooner()
    {
        var plugin = Load("infinite_loop", AmpleFuel with { TimeoutMs = 30_000 });
        var error = CallFails(plugin, deadline: TimeSpan.FromMilliseconds(100));
        Assert.Equal(ErrorReason.Timeout, error.Reason);
        Assert.Equal("100", error.Metadata["limit"]);
    }

    [Fact]
    public void A_loop_of_host_calls_hits_its_deadline()
    {
        var error = CallFails(Load("host_call_loop", AmpleFuel));
        Assert.Equal(ErrorReason.Timeout, error.Reason);
        AssertRuntimeSound();
    }

    [Fact]
    public async Task A_deadline_that_stops_one_plugin_does_not_disturb_another()
    {
        var spinner = Load("infinite_loop", AmpleFuel with { TimeoutMs = 1500 });
        var hello = Load("hello", permissions: HelloPermissions);
        var spinning = Task.Run(() => CallFails(spinner));
        var served = 0;
        while (!spinning.IsCompleted)
        {
            Assert.Equal("Hello, neighbour!", System.Text.Encoding.UTF8.GetString(hello.Execute("greet", "neighbour"u8).Output));
            served++;
        }

        Assert.Equal(ErrorReason.Timeout, (await spinning).Reason);
        Assert.True(served > 10, $"the neighbour served only {served} calls while the other plugin spun");
    }

    [Theory]
    [InlineData("grow_bomb")]
    [InlineData("malloc_bomb")]
    public void Growing_memory_past_the_limit_is_MEMORY_LIMIT_EXCEEDED(string plugin)
    {
        const long limit = 16 * 1024 * 1024;
        var instance = Load(plugin, ResourceLimits.Defaults with { MemoryBytes = limit, FuelPerCall = 10_000_000_000 });
        var error = CallFails(instance);
        Assert.Equal(ErrorReason.MemoryLimitExceeded, error.Reason);
        Assert.Equal(limit.ToString(), error.Metadata["limit"]);
        Assert.True(long.Parse(error.Metadata["used"]) > limit);
        AssertTerminates(instance, error);
        AssertRuntimeSound();
    }

    [Fact]
    public void A_one_GiB_growth_and_fill_is_refused_inside_the_growth_and_no_page_past_the_limit_is_touched()
    {
        const long limit = 16 * 1024 * 1024;
        var instance = Load("fill_bomb", ResourceLimits.Defaults with { MemoryBytes = limit });
        var error = CallFails(instance);
        Assert.Equal(ErrorReason.MemoryLimitExceeded, error.Reason);
        Assert.Equal((65536L + 16384 * 65536).ToString(), error.Metadata["used"]); // what it asked for, not what it got
        Assert.Contains("tried to grow its memory", error.Message);
        Assert.Equal(65536, instance.MemoryBytes); // it never had a byte more than its one page: the fill ran off its end
        AssertTerminates(instance, error);
        AssertRuntimeSound();
    }

    [Fact]
    public void A_refused_growth_ends_the_call_even_when_the_plugin_ignores_the_refusal_and_spins()
    {
        // Timeout 30 s: MEMORY_LIMIT_EXCEEDED, not TIMEOUT, shows the refusal itself ended the call.
        var instance = Load("grow_then_spin", ResourceLimits.Defaults with { MemoryBytes = 16 * 1024 * 1024, FuelPerCall = 1_000_000_000_000 });
        var error = CallFails(instance);
        Assert.Equal(ErrorReason.MemoryLimitExceeded, error.Reason);
        Assert.Equal((65536L + 4096 * 65536).ToString(), error.Metadata["used"]);
        AssertRuntimeSound();
    }

    [Fact]
    public void An_initial_memory_larger_than_the_limit_is_refused_at_load()
    {
        var error = LoadFails("huge_memory");
        Assert.Equal(ErrorReason.MemoryLimitExceeded, error.Reason);
        Assert.Equal((1700L * 65536).ToString(), error.Metadata["used"]);
        Assert.Contains("1700 pages", error.Message);
        AssertRuntimeSound();
    }

    [Fact]
    public void The_same_module_loads_under_a_larger_limit() =>
        Load("huge_memory", ResourceLimits.Defaults with { MemoryBytes = 200L * 1024 * 1024 }).Execute("run", []);

    [Fact]
    public void Deep_recursion_traps_with_a_stack_overflow()
    {
        var plugin = Load("deep_recursion", ResourceLimits.Defaults with { FuelPerCall = 1_000_000_000 });
        var error = CallFails(plugin);
        Assert.Equal(ErrorReason.PluginTrapped, error.Reason);
        Assert.Equal("stack overflow", error.Metadata["trap"]);
        AssertTerminates(plugin, error);
        AssertRuntimeSound();
    }

    [Fact]
    public void Unreachable_traps()
    {
        var plugin = Load("unreachable");
        var error = CallFails(plugin);
        Assert.Equal(ErrorReason.PluginTrapped, error.Reason);
        Assert.Equal("unreachable", error.Metadata["trap"]);
        AssertTerminates(plugin, error);
    }

    [Fact]
    public void Giant_output_is_OUTPUT_TOO_LARGE()
    {
        var plugin = Load("giant_output");
        var error = CallFails(plugin);
        Assert.Equal(ErrorReason.OutputTooLarge, error.Reason);
        Assert.Equal((4 * 1024 * 1024).ToString(), error.Metadata["limit"]);
        Assert.Equal("5242880", error.Metadata["used"]);
        AssertTerminates(plugin, error);
        AssertRuntimeSound();
    }

    [Fact]
    public void A_buffer_outside_the_plugins_memory_traps()
    {
        var plugin = Load("bad_pointer");
        var error = CallFails(plugin);
        Assert.Equal(ErrorReason.PluginTrapped, error.Reason);
        Assert.Contains("outside its", error.Message);
        AssertTerminates(plugin, error);
    }

    [Theory]
    [InlineData("proc_exit", "3")]
    [InlineData("proc_exit_high", "200")] // 126 and more: Wasmtime's own proc_exit made it a trap
    public void Proc_exit_ends_the_plugin_like_a_crash_whatever_the_code(string plugin, string code)
    {
        var instance = Load(plugin);
        var error = CallFails(instance);
        Assert.Equal(ErrorReason.PluginCrashed, error.Reason);
        Assert.Equal(code, error.Metadata["exit_code"]);
        Assert.Contains($"proc_exit({code})", error.Message);
        AssertTerminates(instance, error);
        AssertRuntimeSound();
    }

    [Fact]
    public void An_endless_start_function_fails_the_load_on_fuel()
    {
        Assert.Equal(ErrorReason.FuelExhausted, LoadFails("start_loop").Reason);
        AssertRuntimeSound();
    }

    [Fact]
    public void An_endless_start_function_with_ample_fuel_fails_the_load_on_time() =>
        Assert.Equal(ErrorReason.Timeout, LoadFails("start_loop", AmpleFuel).Reason);

    [Fact]
    public void An_endless_plugin_init_fails_the_load()
    {
        Assert.Equal(ErrorReason.FuelExhausted, LoadFails("init_loop").Reason);
        Assert.Equal(ErrorReason.Timeout, LoadFails("init_loop", AmpleFuel).Reason);
        AssertRuntimeSound();
    }

    [Fact]
    public void Plugin_init_returning_an_error_is_INIT_FAILED_with_its_code_and_message()
    {
        var error = LoadFails("init_error");
        Assert.Equal(ErrorReason.InitFailed, error.Reason);
        Assert.Equal("7", error.Metadata["plugin_code"]);
        Assert.Contains("missing api_key in config", error.Message);
    }

    [Fact]
    public void A_missing_export_is_named()
    {
        var error = LoadFails("missing_export");
        Assert.Equal(ErrorReason.CorruptedData, error.Reason);
        Assert.Contains("does not export 'plugin_execute'", error.Message);
    }

    [Fact]
    public void A_wrong_export_signature_is_named()
    {
        var error = LoadFails("wrong_signature");
        Assert.Equal(ErrorReason.CorruptedData, error.Reason);
        Assert.Contains("export 'plugin_execute' has signature (func (param i32) (result i32))", error.Message);
        Assert.Contains("(func (param i32 i32 i32 i32) (result i32))", error.Message);
    }

    [Fact]
    public void An_import_outside_the_ABI_is_named()
    {
        var error = LoadFails("foreign_import");
        Assert.Equal(ErrorReason.CorruptedData, error.Reason);
        Assert.Contains("'env.system'", error.Message);
    }

    [Fact]
    public void An_unknown_WASI_import_is_named()
    {
        var error = LoadFails("bad_wasi_import");
        Assert.Equal(ErrorReason.CorruptedData, error.Reason);
        Assert.Contains("wasi_snapshot_preview1.launch_missiles", error.Message);
        AssertRuntimeSound();
    }

    [Fact]
    public void An_import_needing_a_permission_not_granted_is_PERMISSION_DENIED()
    {
        var error = LoadFails("storage_import");
        Assert.Equal(ErrorReason.PermissionDenied, error.Reason);
        Assert.Equal("storage", error.Metadata["permission"]);
        Assert.Contains("connectias.storage_get", error.Message);
        Load("storage_import", permissions: new HashSet<Permission> { Permission.Storage }); // and loads once granted
    }

    [Fact]
    public void Network_access_without_a_broker_is_refused_naming_the_missing_broker()
    {
        Assert.Equal(ErrorReason.PermissionDenied, LoadFails("network_import").Reason);
        var error = LoadFails("network_import", permissions: new HashSet<Permission> { Permission.Network });
        Assert.Equal(ErrorReason.PermissionDenied, error.Reason);
        Assert.Contains("no network broker", error.Message);
    }

    [Fact]
    public void Bytes_that_do_not_validate_are_CORRUPTED_DATA()
    {
        var module = SamplePlugins.Wasm("noop");
        module[^3] ^= 0xFF; // inside the code section
        var error = Assert.Throws<SandboxException>(() => PluginInstance.Load(Engine, Setup("noop") is var setup
            ? new PluginSetup { PluginId = setup.PluginId, Module = module } : null!));
        Assert.Equal(ErrorReason.CorruptedData, error.Reason);
        Assert.Contains("does not validate", error.Message);
    }
}

public class WasmtimeErrorTextTests
{
    [Theory]
    [InlineData("error while executing at wasm backtrace:\n    0:   0x1f3 - <unknown>!plugin_execute\n\nCaused by:\n    host function failed: disk full", "host function failed: disk full")]
    [InlineData("error while executing at wasm backtrace:\n    0:   0x1f3 - f\nCaused by:\n    0: outer trouble\n    1: 404 inner trouble", "outer trouble; 404 inner trouble")]
    [InlineData("plain message\nsecond line", "plain message")]
    public void The_cause_of_a_Wasmtime_error_is_kept_not_its_backtrace_header(string text, string expected) =>
        Assert.Equal(expected, PluginFaults.Cause(text));
}
