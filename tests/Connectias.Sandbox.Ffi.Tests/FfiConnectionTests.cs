using System.Diagnostics;
using System.Net.Sockets;
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
    public async Task Calls_to_a_daemon_that_stops_answering_end_at_their_deadlines()
    {
        const string id = "com.test.ffi.hung"; // the policy gives it timeout_ms 1000
        using var daemon = new FfiDaemon();
        using var host = new InteractiveHost(CHost.Start("hung", [daemon.Hello(id), id], daemon.Environment));
        await host.Expect("stop");

        // A daemon that accepts connections and never answers, on the socket the host knows. (A daemon
        // stopped with SIGSTOP looks the same to the host, but a full test run once saw such a daemon
        // answer: a SIGCONT from elsewhere, the kernel's to an orphaned process group say, ends that experiment.)
        daemon.Daemon.Signal("KILL");
        Assert.True(daemon.Daemon.WaitForExit(TimeSpan.FromSeconds(30)));
        File.Delete(daemon.Daemon.SocketPath);
        using var silent = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        silent.Bind(new UnixDomainSocketEndPoint(daemon.Daemon.SocketPath));
        silent.Listen(16);
        var accepted = new List<Socket>();
        var accepting = Task.Run(async () =>
        {
            while (true) accepted.Add(await silent.AcceptAsync());
        });

        await host.Send("stopped");
        var output = await host.Finish("hung");
        var execute = CHost.Figure(output, "execute_ms");
        var list = CHost.Figure(output, "list_ms");
        log.WriteLine($"TIMEOUT after {execute} ms for an execute, {list} ms for a list");
        // Execute's deadline is the plugin's timeout_ms (1000) + the bridge's 5 s grace, a list's is 5 s:
        // nothing else can end the calls, and they must not run much longer on a loaded machine.
        Assert.InRange(execute, 5_500, 9_000);
        Assert.InRange(list, 4_500, 8_000);
        Assert.NotEmpty(accepted); // the calls reached the silent socket rather than failing on the way
        foreach (var connection in accepted) connection.Dispose();
        Assert.False(accepting.IsCompleted, accepting.Exception?.ToString());
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

        /// <summary>Reads the host to its exit and asserts it passed; returns all it printed.</summary>
        public async Task<string> Finish(string scenario)
        {
            var rest = await process.StandardOutput.ReadToEndAsync().WaitAsync(LineTimeout);
            return CHost.Passed(process, scenario, string.Join('\n', _lines) + "\n" + rest, await _error.WaitAsync(LineTimeout));
        }

        public void Dispose()
        {
            if (!process.HasExited) process.Kill();
            process.Dispose();
        }
    }
}
