using Xunit.Abstractions;

namespace Connectias.Sandbox.Ffi.Tests;

/// <summary>
/// Every function of SPEC §7 through a C host against one shared daemon: the success paths, every bad
/// argument, the refusals with their codes and reasons, threads, and memory over 10,000 calls.
/// </summary>
public sealed class FfiBridgeTests(FfiDaemon fixture, ITestOutputHelper log) : IClassFixture<FfiDaemon>
{
    [Fact]
    public void Every_function_works_against_a_real_daemon()
    {
        const string id = "com.test.ffi.calls";
        var version = typeof(FfiBridgeTests).Assembly.GetName().Version!.ToString(3); // both come from Directory.Build.props
        CHost.Run("calls", [fixture.Daemon.SocketPath, fixture.Hello(id), id, version], fixture.Environment);
    }

    [Fact]
    public void Every_pointer_parameter_refuses_NULL_with_minus_2() =>
        CHost.Run("nulls", [fixture.Hello("com.test.ffi.nulls"), "com.test.ffi.nulls"], fixture.Environment);

    [Fact]
    public void Every_string_parameter_refuses_invalid_UTF8_with_minus_1_and_so_does_output_that_is_not_UTF8() =>
        CHost.Run("utf8", [fixture.Hello("com.test.ffi.utf8"), "com.test.ffi.utf8"], fixture.Environment);

    [Fact]
    public void Refusals_return_their_SPEC_codes_with_the_reason_first_in_the_last_error()
    {
        const string hello = "com.test.ffi.refused", commands = "com.test.ffi.declared";
        CHost.Run("refusals", [
            fixture.Hello(hello), hello, fixture.Hello(commands, FfiDaemon.GreetOnly), commands,
            fixture.Tampered("com.test.ffi.tampered"), fixture.Untrusted("com.test.ffi.stranger"), fixture.Missing("nowhere"),
        ], fixture.Environment);
    }

    [Fact]
    public void Eight_threads_each_read_their_own_last_error()
    {
        const string hello = "com.test.ffi.threads", commands = "com.test.ffi.threads-declared";
        CHost.Run("threads", [
            fixture.Hello(hello), hello, fixture.Hello(commands, FfiDaemon.GreetOnly), commands, fixture.Tampered("com.test.ffi.threads-tampered"),
        ], fixture.Environment);
    }

    [Fact]
    public void Shutdown_and_init_racing_calls_on_other_threads_fail_those_calls_cleanly()
    {
        var output = CHost.Run("shutdown-race", [fixture.Hello("com.test.ffi.race"), "com.test.ffi.race"], fixture.Environment);
        log.WriteLine(output);
    }

    [Fact]
    public void Ten_thousand_calls_do_not_grow_the_host_memory()
    {
        var output = CHost.Run("memory", [fixture.Hello("com.test.ffi.memory"), "com.test.ffi.memory"], fixture.Environment);
        var warm = CHost.Figure(output, "rss_warm_kib");
        var after = CHost.Figure(output, "rss_after_kib");
        log.WriteLine(output);

        // Each call returns 4 KiB of output: keeping every result (or its request) would add over 40 MiB
        // over 10,000 calls. The bound leaves room for the managed heap and the allocator settling.
        const long boundKib = 8 * 1024;
        Assert.True(after - warm < boundKib, $"RSS grew by {after - warm} KiB over 10,000 calls ({warm} -> {after} KiB); the bound is {boundKib} KiB");
    }
}
