using System.Collections.Concurrent;
using System.Diagnostics;
using Connectias.Sandbox.Client;
using Connectias.Sandbox.Contracts;
using Connectias.Sandbox.V1;
using Google.Protobuf;
using Grpc.Core;

namespace Connectias.Sandbox.Ffi;

/// <summary>No connection: connectias_init was not called, failed, or connectias_shutdown closed it.</summary>
internal sealed class NotConnectedException(string message) : Exception(message);

/// <summary>
/// The bridge's one connection to the daemon and the calls made over it. Any thread may call; only
/// init and shutdown take the lock, every other call works on the connection it finds. The gRPC channel
/// opens a new Unix-socket connection whenever it has none, so a daemon restarted between two calls is
/// reached again by the next call with no action here.
/// </summary>
internal static class Bridge
{
    /// <summary>For calls the daemon answers from memory: the init check, ListPlugins, GetPlugin.</summary>
    public static readonly TimeSpan ControlDeadline = TimeSpan.FromSeconds(5);

    /// <summary>
    /// How long past the plugin's timeout_ms an Execute may take: the daemon answers a hung plugin
    /// CallGraceMs (2 s by default) after its deadline, plus time for that answer on a loaded machine.
    /// </summary>
    public static readonly TimeSpan CallGrace = TimeSpan.FromSeconds(5);

    /// <summary>
    /// A backstop only: the daemon bounds a load itself (worker start 15 s, then init within the plugin's
    /// timeout_ms plus 30 s), and the bridge cannot know a package's timeout before the daemon has read it.
    /// </summary>
    public static readonly TimeSpan LoadDeadline = TimeSpan.FromMinutes(3);

    /// <summary>The daemon waits up to 5 s for a call in flight and 5 s for plugin_cleanup, then 2 s for the worker to exit.</summary>
    public static readonly TimeSpan UnloadDeadline = TimeSpan.FromSeconds(30);

    /// <summary>How long a plugin's timeout_ms is trusted before it is asked again (another client may replace the plugin).</summary>
    private static readonly TimeSpan TimeoutTtl = TimeSpan.FromSeconds(10);

    private static readonly Lock Sync = new();
    private static readonly ConcurrentDictionary<string, (TimeSpan Timeout, long FetchedAt)> Timeouts = new(StringComparer.Ordinal);
    private static volatile Connection? _current;

    /// <summary>
    /// Connects to <paramref name="socketPath"/> (else $CONNECTIAS_SANDBOX_SOCKET, else the default daemon's
    /// socket) and checks that a daemon answers. Idempotent; a failure leaves the bridge as it was.
    /// </summary>
    public static void Init(string? socketPath)
    {
        var path = socketPath
                   ?? (Environment.GetEnvironmentVariable("CONNECTIAS_SANDBOX_SOCKET") is { Length: > 0 } fromEnvironment ? fromEnvironment : null)
                   ?? SandboxPaths.SocketPath(SandboxPaths.DefaultStateDirectory());
        lock (Sync)
        {
            if (_current is { } same && same.Client.Endpoint == path)
            {
                Control(same, "the connection check", token => same.Client.ListAsync(token));
                return;
            }

            var fresh = new Connection(SandboxClient.Connect(path));
            try
            {
                Control(fresh, "the connection check", token => fresh.Client.ListAsync(token));
            }
            catch
            {
                fresh.Dispose();
                throw;
            }

            var previous = _current;
            _current = fresh;
            Timeouts.Clear();
            previous?.Dispose();
        }
    }

    /// <summary>Closes the connection; calls still in flight on other threads fail with INIT_FAILED.</summary>
    public static void Shutdown()
    {
        lock (Sync)
        {
            var previous = _current;
            _current = null;
            Timeouts.Clear();
            previous?.Dispose();
        }
    }

    /// <summary>Sends the package file's bytes (the daemon need not see the host's files) and returns the plugin id once READY.</summary>
    public static string Load(string packagePath)
    {
        var connection = Current();
        var package = ReadPackage(packagePath);
        var info = Deadline(connection, LoadDeadline, $"the load of {packagePath}", token => connection.Client.LoadAsync(package, token));
        Timeouts[info.PluginId] = (TimeoutOf(info), Stopwatch.GetTimestamp());
        return info.PluginId;
    }

    public static void Unload(string pluginId)
    {
        var connection = Current();
        Timeouts.TryRemove(pluginId, out _);
        Deadline(connection, UnloadDeadline, $"the unload of {pluginId}", token => connection.Client.UnloadAsync(pluginId, token));
    }

    /// <summary>Runs a command under a deadline of the plugin's own timeout_ms plus <see cref="CallGrace"/>.</summary>
    public static ByteString Execute(string pluginId, string command, ReadOnlyMemory<byte> args)
    {
        var connection = Current();
        // Refused here rather than by the transport, whose refusal would carry no sandbox reason.
        if (args.Length > UnixSocketChannel.MaxMessageBytes - 1024 * 1024)
            throw new SandboxException(ErrorReason.CorruptedData, $"the arguments are {args.Length} bytes; one call carries at most {UnixSocketChannel.MaxMessageBytes - 1024 * 1024}");
        var timeout = PluginTimeout(connection, pluginId);
        try
        {
            return Guarded(connection, () => connection.Client.ExecuteAsync(pluginId, command, args, timeout + CallGrace).GetAwaiter().GetResult()).Output;
        }
        catch (SandboxException e) when (e.Reason == ErrorReason.PluginNotFound)
        {
            Timeouts.TryRemove(pluginId, out _);
            throw;
        }
    }

    public static IReadOnlyList<PluginInfo> List()
    {
        var connection = Current();
        return Control(connection, "ListPlugins", token => connection.Client.ListAsync(token));
    }

    private static Connection Current() =>
        _current ?? throw new NotConnectedException("not initialised: call connectias_init or connectias_init_with_socket first");

    private static TimeSpan PluginTimeout(Connection connection, string pluginId)
    {
        if (Timeouts.TryGetValue(pluginId, out var known) && Stopwatch.GetElapsedTime(known.FetchedAt) < TimeoutTtl) return known.Timeout;
        var info = Control(connection, $"GetPlugin {pluginId}", token => connection.Client.GetAsync(pluginId, token));
        var timeout = TimeoutOf(info);
        Timeouts[pluginId] = (timeout, Stopwatch.GetTimestamp());
        return timeout;
    }

    private static TimeSpan TimeoutOf(PluginInfo info) => TimeSpan.FromMilliseconds(info.Limits?.TimeoutMs ?? 0);

    private static byte[] ReadPackage(string path)
    {
        try
        {
            // What the transport could not carry is refused here; the daemon refuses packages over 64 MiB itself.
            var length = new FileInfo(path).Length;
            if (length > UnixSocketChannel.MaxMessageBytes)
                throw new SandboxException(ErrorReason.CorruptedData, $"package file {path} is {length} bytes; a package is at most 64 MiB");
            return File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
        {
            // No §4 reason says "unreadable file" (or an empty path); CORRUPTED_DATA is the one for a package that cannot be used as given.
            throw new SandboxException(ErrorReason.CorruptedData, $"cannot read package file {path}: {e.Message}", null, e);
        }
    }

    private static T Control<T>(Connection connection, string what, Func<CancellationToken, Task<T>> call) =>
        Deadline(connection, ControlDeadline, what, call);

    /// <summary>Runs <paramref name="call"/> cancelled after <paramref name="limit"/>, which then counts as TIMEOUT, as a gRPC deadline would.</summary>
    private static T Deadline<T>(Connection connection, TimeSpan limit, string what, Func<CancellationToken, Task<T>> call)
    {
        using var deadline = new CancellationTokenSource(limit);
        try
        {
            return Guarded(connection, () => call(deadline.Token).GetAwaiter().GetResult());
        }
        catch (Exception e) when (deadline.IsCancellationRequested && e is OperationCanceledException or RpcException { StatusCode: StatusCode.Cancelled })
        {
            throw new SandboxException(ErrorReason.Timeout, $"connectias-sandboxd did not answer {what} within {limit.TotalSeconds:F0} s", null, e);
        }
    }

    /// <summary>A call cut short because another thread closed its connection says so, not what the channel threw.</summary>
    private static T Guarded<T>(Connection connection, Func<T> call)
    {
        try
        {
            return call();
        }
        catch (Exception e) when (connection.Closed && e is not SandboxException)
        {
            throw new NotConnectedException("the connection was closed by connectias_shutdown or a new connectias_init during the call");
        }
    }

    /// <summary>One client and whether it was closed, so calls racing a shutdown can tell.</summary>
    private sealed class Connection(SandboxClient client) : IDisposable
    {
        private volatile bool _closed;

        public SandboxClient Client => client;

        public bool Closed => _closed;

        public void Dispose()
        {
            _closed = true;
            client.Dispose();
        }
    }
}
