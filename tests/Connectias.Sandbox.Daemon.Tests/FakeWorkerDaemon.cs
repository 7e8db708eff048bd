using System.Text;

namespace Connectias.Sandbox.Daemon.Tests;

/// <summary>
/// A daemon whose worker executable is a shell script that execs either the real worker or the fake worker
/// (tests/Connectias.Sandbox.FakeWorker) with a chosen behaviour, as the mode file beside the script says. The
/// daemon starts workers with a cleared environment, so a file is how a test chooses, and it can switch between
/// loads on one daemon. Workers run as plain child processes (--sandbox none): nothing here depends on bubblewrap.
/// </summary>
public sealed class FakeWorkerDaemon : IDisposable
{
    /// <summary>The mode that runs the real worker instead of a fake one.</summary>
    public const string RealWorker = "real";

    public static readonly string FakeWorkerDll = Path.Combine(AppContext.BaseDirectory, "Connectias.Sandbox.FakeWorker.dll");
    private static readonly string RealWorkerDll = Path.Combine(AppContext.BaseDirectory, "connectias-sandbox-worker.dll");

    /// <summary>What the hello sample needs for everyone; a 1 s timeout for the plugins that hang.</summary>
    private const string Policy = """
        {
          "default": { "permissions": ["storage", "system_info"] },
          "plugins": {
            "com.test.hang-mid-call": { "limits": { "timeout_ms": 1000 } },
            "com.test.hang-in-load": { "limits": { "timeout_ms": 1000 } }
          }
        }
        """;

    private readonly string _scriptDirectory;

    /// <summary>The daemon with its default settings (a class fixture needs this one public constructor).</summary>
    public FakeWorkerDaemon()
        : this([])
    {
    }

    private FakeWorkerDaemon((string Name, string Value)[] settings)
    {
        _scriptDirectory = Directory.CreateTempSubdirectory("connectias-fakeworker-").FullName;
        var script = Path.Combine(_scriptDirectory, "worker.sh");
        File.WriteAllText(script, Script());
        File.SetUnixFileMode(script, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        UseWorker(RealWorker);
        Daemon = DaemonProcess.Start(new DaemonStartInfo
        {
            PolicyJson = Policy,
            // No warm workers: each load starts the worker the test chose just before it.
            Settings = [("WorkerExecutable", script), ("WarmWorkers", "0"), .. settings],
            Arguments = ["--sandbox", "none"],
        });
    }

    public DaemonProcess Daemon { get; }

    /// <summary>A daemon with Sandbox:* <paramref name="settings"/> added, e.g. a short WorkerStartTimeoutMs.</summary>
    public static FakeWorkerDaemon Start(params (string Name, string Value)[] settings) => new(settings);

    /// <summary>The worker the next load starts: <see cref="RealWorker"/> or a fake worker behaviour.</summary>
    public void UseWorker(string mode) => File.WriteAllText(Path.Combine(_scriptDirectory, "worker-mode"), mode + "\n");

    /// <summary>Fake worker processes alive now (zombies count as gone), found by the fake worker's path in their command line.</summary>
    public static IReadOnlyList<int> LiveFakeWorkers()
    {
        var pids = new List<int>();
        foreach (var directory in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(directory), out var pid)) continue;
            try
            {
                if (File.ReadAllText(Path.Combine(directory, "cmdline")).Contains(FakeWorkerDll, StringComparison.Ordinal) && LifecycleTests.IsAlive(pid))
                    pids.Add(pid);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // the process ended while we looked, or is not ours to read
            }
        }

        return pids;
    }

    private string Script()
    {
        var dotnet = Quote(DotnetHost());
        return new StringBuilder()
            .Append("#!/bin/sh\n")
            .Append("# The worker executable of a test daemon: the mode file beside this script picks the real worker or a fake one.\n")
            .Append("mode=$(cat \"$(dirname \"$0\")/worker-mode\")\n")
            .Append($"if [ \"$mode\" = {RealWorker} ]; then exec {dotnet} {Quote(RealWorkerDll)} \"$@\"; fi\n")
            .Append($"exec {dotnet} {Quote(FakeWorkerDll)} --behaviour \"$mode\" \"$@\"\n")
            .ToString();
    }

    /// <summary>The dotnet host by its full path: the worker's PATH is only /usr/bin:/bin, which need not hold it.</summary>
    private static string DotnetHost()
    {
        if (Environment.ProcessPath is { } self && Path.GetFileNameWithoutExtension(self) == "dotnet") return self;
        foreach (var directory in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries))
            if (File.Exists(Path.Combine(directory, "dotnet"))) return Path.Combine(directory, "dotnet");
        throw new InvalidOperationException("no dotnet host found on PATH");
    }

    private static string Quote(string text) => "'" + text.Replace("'", "'\\''", StringComparison.Ordinal) + "'";

    public void Dispose()
    {
        Daemon.Dispose();
        Directory.Delete(_scriptDirectory, recursive: true);
    }
}
