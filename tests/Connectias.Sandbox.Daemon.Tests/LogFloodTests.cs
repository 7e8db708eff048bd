using System.Diagnostics;
using System.Globalization;
using Connectias.Sandbox.V1;

namespace Connectias.Sandbox.Daemon.Tests;

/// <summary>
/// The floods of issue 12 by a real plugin (samples/plugins/wat/log_flood.wat) through the daemon and its worker, with
/// the default budgets: the daemon's log holds each call's budget of lines and one summary with the right counts, and
/// the plugin and the daemon go on serving.
/// </summary>
public class LogFloodTests
{
    private const string Id = "com.test.flood";
    private const string FloodFuel = ",\"resource_limits\":{\"fuel_per_call\":100000000}";
    private static readonly int LinesPerCall = PluginBudgets.Defaults.LogLinesPerCall;

    [Fact]
    public async Task A_plugin_flooding_its_log_leaves_the_daemons_log_its_budget_and_one_summary_per_call_and_stays_READY()
    {
        using var daemon = DaemonProcess.Start("""{ "plugins": { "com.test.flood": { "limits": { "fuel_per_call": 100000000 } } } }""");
        using var client = daemon.Client();
        await client.LoadAsync(daemon.Package("log_flood", Id, FloodFuel));
        await client.ExecuteAsync(Id, "newlines"); // one fd_write of 64 MiB of newlines
        await client.ExecuteAsync(Id, "log");      // a million log calls of one byte

        var clock = Stopwatch.StartNew();
        while (MisbehavingWorkerTests.PluginLog(daemon, Id).Count(line => line.Source == "log-budget") < 2 && clock.Elapsed < TimeSpan.FromSeconds(15))
            await Task.Delay(50);
        var lines = MisbehavingWorkerTests.PluginLog(daemon, Id);
        var stdout = lines.Where(line => line.Source == "plugin-stdout").ToList();
        Assert.Equal(LinesPerCall, stdout.Count);
        Assert.All(stdout, line => Assert.Equal("", line.Message));
        Assert.Equal(LinesPerCall, lines.Count(line => line.Source == "plugin"));
        Assert.All(lines.Where(line => line.Source == "plugin"), line => Assert.Equal("x", line.Message));
        var summaries = lines.Where(line => line.Source == "log-budget").Select(line => line.Message).ToList();
        Assert.Equal(2, summaries.Count);
        var newlinesDropped = (64 << 20) - LinesPerCall;
        Assert.StartsWith(string.Create(CultureInfo.InvariantCulture, $"log budget of a call spent: {newlinesDropped} lines (0 bytes) of this call dropped"), summaries[0]);
        var logDropped = 1_000_000 - LinesPerCall;
        Assert.StartsWith(string.Create(CultureInfo.InvariantCulture, $"log budget of a call spent: {logDropped} lines ({logDropped} bytes) of this call dropped"), summaries[1]);
        Assert.DoesNotContain(lines, line => line.Message.Contains("log over the daemon's budget", StringComparison.Ordinal)); // the backstop had nothing to do

        Assert.Equal(PluginState.Ready, (await client.GetAsync(Id)).State);
        await client.ExecuteAsync(Id, "empty");
        await client.LoadAsync(daemon.Package("noop", "com.test.after-flood"));
        Assert.Empty((await client.ExecuteAsync("com.test.after-flood", "run")).Output);
    }
}
