using System.Diagnostics;
using Xunit.Abstractions;

namespace Connectias.Sandbox.Ffi.Tests;

/// <summary>The bridge's connection: no daemon, the default socket, a daemon restarted between two calls, a daemon that hangs.</summary>
public sealed class FfiConnectionTests(ITestOutputHelper log)
{
    private static readonly TimeSpan LineTimeout = TimeSpan.FromSeconds(60);

    [Fact]
    public void Without_a_daemon_every_call_is_minus_3_DAEMON_UNAVAILABLE()
    {
        var missing = Path.Combine(Path.GetTempPath(), $"connectias-none-{Guid.NewGuid():N}.sock");
        CHost.Run("no-daemon", [missing, "/nonexistent/package.zip"], [("CONNECTIAS_SANDBOX_SOCKET", missing)]);
    }

    [Fact]
    public void Init_without_a_socket_finds_the_default_daemon()
    {
        var stateHome = Directory.CreateTempSubdirectory("connectias-xdg-");
        try
        {
            using var daemon = new FfiDaemon(new DaemonStartInfo { StateDir = Path.Combine(stateHome.FullName, "connectias-sandbox") });
            CHost.Run("default-socket", [daemon.Hello("com.test.ffi.default"), "com.test.ffi.default"],
                [("CONNECTIAS_SANDBOX_SOCKET", null), ("XDG_STATE_HOME", stateHome.FullName)]);
        }
        finally
        {
            stateHome.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task A_daemon_restarted_between_two_calls_is_reached_again_by_the_next_call()
    {
        const string id = "com.test.ffi.restart";
        using var first = new FfiDaemon();
        var secondPackage = first.Missing("second"); // written once the second daemon's key exists
        using var host = new InteractiveHost(CHost.Start("restart", [first.Hello(id), id, secondPackage], first.Environment));

        await host.Expect("stop");
        first.Daemon.Signal("TERM");
        Assert.True(first.Daemon.WaitForExit(TimeSpan.FromSeconds(30)), "the first daemon did not stop");
        await host.Send("stopped");

        await host.Expect("start");
        using var second = DaemonProcess.Start(new DaemonStartInfo { StateDir = first.Daemon.StateDir, PolicyJson = FfiDaemon.Policy });
        Assert.Equal(first.Daemon.SocketPath, second.SocketPath);
        File.WriteAllBytes(secondPackage, second.Package("hello", id, FfiDaemon.HelloPermissions));
        await host.Send("started");
        await host.Finish("restart");
    }

    [Fact]
    public async Task A_call_to_a_hung_daemon_ends_at_the_plugin_timeout_plus_the_grace()
    {
        const string id = "com.test.ffi.hung"; // the policy gives it timeout_ms 1000
        using var daemon = new FfiDaemon();
        using var host = new InteractiveHost(CHost.Start("hung", [daemon.Hello(id), id], daemon.Environment));
        await host.Expect("stop");
        daemon.Daemon.Signal("STOP");
        try
        {
            await host.Send("stopped");
            var elapsed = CHost.Figure(await host.Expect("elapsed_ms="), "elapsed_ms");
            log.WriteLine($"a call to the stopped daemon returned TIMEOUT after {elapsed} ms");
            // The bridge's deadline is timeout_ms (1000) + its 5 s grace: nothing else can end the call,
            // and it must not run much longer than that on a loaded machine.
            Assert.InRange(elapsed, 5_500, 9_000);
            await host.Expect("continue");
        }
        finally
        {
            daemon.Daemon.Signal("CONT");
        }

        await host.Send("continued");
        await host.Finish("hung");
    }

    /// <summary>A host that talks with the test over stdin and stdout; killed if the test ends before it does.</summary>
    private sealed class InteractiveHost(Process process) : IDisposable
    {
        private readonly Task<string> _error = process.StandardError.ReadToEndAsync();
        private readonly List<string> _lines = [];

        /// <summary>Reads stdout until a line starting with <paramref name="prefix"/>; returns that line.</summary>
        public async Task<string> Expect(string prefix)
        {
            while (true)
            {
                var line = await process.StandardOutput.ReadLineAsync().WaitAsync(LineTimeout);
                if (line is null) Assert.Fail($"the host ended before printing {prefix}:\n{string.Join('\n', _lines)}\n{await _error}");
                _lines.Add(line);
                if (line.StartsWith(prefix, StringComparison.Ordinal)) return line;
            }
        }

        public async Task Send(string line)
        {
            await process.StandardInput.WriteLineAsync(line);
            await process.StandardInput.FlushAsync();
        }

        public async Task Finish(string scenario)
        {
            var rest = await process.StandardOutput.ReadToEndAsync().WaitAsync(LineTimeout);
            CHost.Passed(process, scenario, string.Join('\n', _lines) + "\n" + rest, await _error.WaitAsync(LineTimeout));
        }

        public void Dispose()
        {
            if (!process.HasExited) process.Kill();
            process.Dispose();
        }
    }
}
