using System.Text;
using Connectias.Sandbox.Cli;
using Connectias.Sandbox.TestSupport;
using Connectias.Sandbox.V1;

namespace Connectias.Sandbox.Daemon.Tests;

/// <summary>The CLI's daemon commands as a new user met them, against a real daemon, run in process.</summary>
public sealed class CliDaemonTests(CliDaemonTests.Daemon fixture) : IClassFixture<CliDaemonTests.Daemon>
{
    public sealed class Daemon : IDisposable
    {
        public DaemonProcess Process { get; } = DaemonProcess.Start("""
            { "plugins": { "com.test.cli-sleeper": { "limits": { "fuel_per_call": 1000000000000, "timeout_ms": 20000 } } } }
            """);

        public void Dispose() => Process.Dispose();
    }

    private const string HelloPermissions = ",\"permissions\":[\"storage\",\"system_info\"]";
    private readonly DaemonProcess _daemon = fixture.Process;

    private sealed record Result(int ExitCode, string Output, string Error);

    private Result Run(byte[]? stdin, params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var code = CliApp.Run([.. args, "--socket", _daemon.SocketPath], output, error, () => new MemoryStream(stdin ?? []));
        return new Result(code, output.ToString(), error.ToString());
    }

    private Result Run(params string[] args) => Run(null, args);

    private async Task<PluginInfo> Load(string sample, string id, string extraManifest = "")
    {
        using var client = _daemon.Client();
        return await client.LoadAsync(_daemon.Package(sample, id, extraManifest));
    }

    [Fact]
    public async Task A_client_deadline_says_TIMEOUT_and_exits_1_without_a_stack_trace()
    {
        await Load("infinite_loop", "com.test.cli-sleeper", ",\"resource_limits\":{\"fuel_per_call\":1000000000000}");
        var result = Run("exec", "com.test.cli-sleeper", "run", "--timeout", "300");
        Assert.Equal(ExitCodes.Refused, result.ExitCode);
        Assert.StartsWith("TIMEOUT: ", result.Error);
        Assert.DoesNotContain("   at ", result.Error);
    }

    [Fact]
    public async Task Arguments_come_from_a_file_from_standard_input_or_as_given_with_a_leading_at_sign()
    {
        await Load("hello", "com.test.cli-echo", HelloPermissions);
        var big = new string('x', 200 * 1024); // beyond what a shell passes as one argument
        var file = Path.GetTempFileName();
        File.WriteAllText(file, big);
        try
        {
            var fromFile = Run("exec", "com.test.cli-echo", "echo", "--args-file", file);
            Assert.Equal(0, fromFile.ExitCode);
            Assert.Equal(big + "\n", fromFile.Output);
        }
        finally
        {
            File.Delete(file);
        }

        Assert.Equal("from stdin\n", Run(Encoding.UTF8.GetBytes("from stdin"), "exec", "com.test.cli-echo", "echo", "-").Output);
        Assert.Equal("@not-a-response-file\n", Run("exec", "com.test.cli-echo", "echo", "@not-a-response-file").Output);
        Assert.Equal(ExitCodes.Usage, Run("exec", "com.test.cli-echo", "echo", "inline", "--args-file", "/etc/hostname").ExitCode);
    }

    [Fact]
    public async Task Ps_shows_the_workers_own_pid_and_only_live_plugins_unless_all()
    {
        var info = await Load("noop", "com.test.cli-ps");
        Assert.Contains("connectias-sandbox-worker", File.ReadAllText($"/proc/{info.Pid}/cmdline")); // not bubblewrap's
        var live = Run("ps").Output.Split('\n').Single(line => line.StartsWith("com.test.cli-ps ", StringComparison.Ordinal));
        Assert.Contains($" {info.Pid} ", live);

        Assert.Equal(0, Run("unload", "com.test.cli-ps").ExitCode);
        Assert.DoesNotContain("com.test.cli-ps", Run("ps").Output);
        Assert.Contains(Run("ps", "--all").Output.Split('\n'), line => line.StartsWith("com.test.cli-ps ", StringComparison.Ordinal) && line.Contains("Unloaded"));
    }

    [Fact]
    public async Task Unload_of_a_terminated_plugin_says_plugin_cleanup_did_not_run_rather_than_that_it_is_not_exported()
    {
        await Load("unreachable", "com.test.cli-trap");
        Assert.StartsWith("PLUGIN_TRAPPED: ", Run("exec", "com.test.cli-trap", "run").Error);
        using (var client = _daemon.Client()) await ApiErrorTests.WaitForState(client, "com.test.cli-trap", PluginState.Terminated);
        var result = Run("unload", "com.test.cli-trap");
        Assert.Equal(0, result.ExitCode);
        Assert.Contains("plugin_cleanup not run (the plugin was already Terminated: PLUGIN_TRAPPED)", result.Output);
        Assert.DoesNotContain("not exported", result.Output);
    }

    [Fact]
    public void Load_of_a_directory_says_it_is_a_directory()
    {
        var directory = Directory.CreateTempSubdirectory("connectias-not-a-package-").FullName;
        try
        {
            var result = Run("load", directory);
            Assert.Equal(ExitCodes.IoError, result.ExitCode);
            Assert.Contains($"{directory} is a directory", result.Error);
        }
        finally
        {
            Directory.Delete(directory);
        }
    }

    [Fact]
    public void A_socket_with_no_daemon_says_no_daemon_is_listening_there()
    {
        var socket = Path.Combine(Path.GetTempPath(), $"connectias-nobody-{Guid.NewGuid():N}.sock");
        var error = new StringWriter();
        Assert.Equal(ExitCodes.DaemonUnavailable, CliApp.Run(["ps", "--socket", socket], new StringWriter(), error));
        Assert.Contains($"no daemon is listening on {socket}", error.ToString());
    }
}
