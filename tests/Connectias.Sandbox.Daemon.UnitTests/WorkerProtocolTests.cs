using Connectias.Sandbox.Daemon.Hosting;
using Connectias.Sandbox.WorkerProtocol;

namespace Connectias.Sandbox.Daemon.UnitTests;

/// <summary>The handshake line, the fault mapping and the limits mapping of the worker protocol.</summary>
public class WorkerProtocolTests
{
    [Fact]
    public void A_handshake_round_trips_even_with_a_bar_in_the_socket_path()
    {
        var line = WorkerHandshake.Format("/run/a|b/worker.sock", 4242, "wasmtime-50+fuel");
        Assert.Equal("CONNECTIAS-WORKER|2|wasmtime-50+fuel|unix|/run/a|b/worker.sock|4242", line);
        var parsed = WorkerHandshake.TryParse(line, out _)!;
        Assert.Equal(new WorkerHandshake(2, "wasmtime-50+fuel", "unix", "/run/a|b/worker.sock", 4242), parsed);
        Assert.Null(parsed.Mismatch("/run/a|b/worker.sock"));
    }

    [Theory]
    [InlineData(null, "no handshake line")]
    [InlineData("", "not a handshake")]
    [InlineData("hello world", "not a handshake")]
    [InlineData("CONNECTIAS-WORKER|2|e|unix|/s", "not a handshake")]
    [InlineData("CONNECTIAS-WORKER|one|e|unix|/s|12", "version 'one' is not a number")]
    [InlineData("CONNECTIAS-WORKER|2|e|unix|/s|-12", "pid '-12' is not a process id")]
    [InlineData("CONNECTIAS-WORKER|2|e|unix|/s|0", "pid '0' is not a process id")]
    public void A_malformed_handshake_says_what_is_wrong(string? line, string expected)
    {
        Assert.Null(WorkerHandshake.TryParse(line, out var problem));
        Assert.Contains(expected, problem);
    }

    [Fact]
    public void An_endless_line_is_not_a_handshake()
    {
        Assert.Null(WorkerHandshake.TryParse("CONNECTIAS-WORKER|2|e|unix|/" + new string('a', 5000) + "|1", out var problem));
        Assert.Contains("characters", problem);
    }

    [Theory]
    [InlineData("CONNECTIAS-WORKER|1|unix|/s|1", "protocol version 1, expected 2")]
    [InlineData("CONNECTIAS-WORKER|3|e|unix|/s|1", "protocol version 3")]
    [InlineData("CONNECTIAS-WORKER|2|e|tcp|/s|1", "network 'tcp'")]
    [InlineData("CONNECTIAS-WORKER|2|e|unix|/other|1", "socket '/other', expected /s")]
    public void A_handshake_for_another_protocol_or_socket_does_not_match(string line, string expected) =>
        Assert.Contains(expected, WorkerHandshake.TryParse(line, out _)!.Mismatch("/s"));

    [Fact]
    public void A_fault_carries_reason_message_metadata_and_fatality_and_the_daemon_names_the_plugin()
    {
        var fault = WorkerFaults.ToFault(new SandboxException(ErrorReason.FuelExhausted, "out of fuel", new Dictionary<string, string> { ["limit"] = "5", ["plugin_id"] = "com.evil.liar" }));
        Assert.True(fault.Fatal);
        Assert.False(WorkerFaults.ToFault(new SandboxException(ErrorReason.PluginError, "no")).Fatal);
        var error = WorkerFaults.ToError(fault, "com.example.real");
        Assert.Equal(ErrorReason.FuelExhausted, error.Reason);
        Assert.Equal("out of fuel", error.Message);
        Assert.Equal("5", error.Metadata["limit"]);
        Assert.Equal("com.example.real", error.Metadata["plugin_id"]); // the worker's word on who it is does not count
    }

    [Fact]
    public void A_fault_with_a_reason_the_daemon_does_not_know_is_a_crash() =>
        Assert.Equal(ErrorReason.PluginCrashed, WorkerFaults.ToError(new Worker.V1.Fault { Reason = "SOMETHING_NEW" }, "com.example.a").Reason);

    [Fact]
    public void The_limits_a_worker_enforces_survive_the_trip()
    {
        var limits = ResourceLimits.Defaults with { MemoryBytes = 1, FuelPerCall = 2, TimeoutMs = 3, StorageBytes = 4, OutputBytes = 5 };
        Assert.Equal(limits, limits.ToWorkerLimits().ToResourceLimits());
    }

    [Fact]
    public void The_budgets_a_worker_enforces_survive_the_trip_and_the_settings_are_what_a_load_carries()
    {
        var budgets = new PluginBudgets { LogLinesPerCall = 1, LogBytesPerCall = 2, LogLinesPerMinute = 3, LogBytesPerMinute = 4, StorageMaxEntries = 5 };
        Assert.Equal(budgets, budgets.ToWorkerBudgets().ToPluginBudgets());
        var options = new DaemonOptions { PluginLogLinesPerCall = 1, PluginLogBytesPerCall = 2, PluginLogLinesPerMinute = 3, PluginLogBytesPerMinute = 4, StorageMaxEntries = 5 };
        Assert.Equal(budgets, options.PluginBudgets);
    }

    [Fact]
    public void A_load_without_budgets_or_with_a_budget_of_0_takes_the_defaults()
    {
        Assert.Equal(PluginBudgets.Defaults, ((Worker.V1.WorkerBudgets?)null).ToPluginBudgets());
        Assert.Equal(PluginBudgets.Defaults with { StorageMaxEntries = 7 }, new Worker.V1.WorkerBudgets { StorageMaxEntries = 7 }.ToPluginBudgets());
        Assert.Equal(PluginBudgets.Defaults, new DaemonOptions().PluginBudgets);
    }
}
