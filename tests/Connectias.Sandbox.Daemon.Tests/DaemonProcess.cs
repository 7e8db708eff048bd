using System.Diagnostics;
using System.Text;
using Connectias.Sandbox.Client;
using Connectias.Sandbox.Packaging;

namespace Connectias.Sandbox.Daemon.Tests;

/// <summary>A real connectias-sandboxd with its own state directory, trust store and policy.</summary>
public sealed class DaemonProcess : IDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _log = new();

    private DaemonProcess(Process process, string stateDir, SigningKey key)
    {
        _process = process;
        StateDir = stateDir;
        Key = key;
        SocketPath = Path.Combine(stateDir, "run", "sandboxd.sock");
    }

    public string StateDir { get; }
    public string SocketPath { get; }
    public SigningKey Key { get; }
    public int Pid => _process.Id;
    public bool HasExited => _process.HasExited;
    public int ExitCode => _process.ExitCode;
    public string AuditPath => Path.Combine(StateDir, "audit", "audit.jsonl");

    public string Log
    {
        get
        {
            lock (_log) return _log.ToString();
        }
    }

    /// <summary>Starts a daemon that trusts a fresh test key; <paramref name="settings"/> are Sandbox__* environment settings.</summary>
    public static DaemonProcess Start(string policyJson, params (string Key, string Value)[] settings)
    {
        var stateDir = Directory.CreateTempSubdirectory("connectias-daemon-").FullName;
        var trust = Directory.CreateDirectory(Path.Combine(stateDir, "trust")).FullName;
        var key = SigningKey.Generate(SignatureAlgorithm.Ec);
        File.WriteAllText(Path.Combine(trust, "test.pub"), key.ExportPublicKeyPem());
        var policy = Path.Combine(stateDir, "policy.json");
        File.WriteAllText(policy, policyJson);

        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in new[] { Path.Combine(AppContext.BaseDirectory, "connectias-sandboxd.dll"), "--state-dir", stateDir, "--policy", policy, "--no-dev-key" })
            start.ArgumentList.Add(arg);
        foreach (var (name, value) in settings) start.Environment[$"Sandbox__{name}"] = value;
        var process = Process.Start(start)!;
        var daemon = new DaemonProcess(process, stateDir, key);
        process.OutputDataReceived += (_, e) => daemon.Append(e.Data);
        process.ErrorDataReceived += (_, e) => daemon.Append(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        var clock = Stopwatch.StartNew();
        while (!daemon.Log.Contains("listening on", StringComparison.Ordinal))
        {
            if (process.HasExited || clock.Elapsed > TimeSpan.FromSeconds(60))
                throw new InvalidOperationException($"the daemon did not start:\n{daemon.Log}");
            Thread.Sleep(20);
        }

        return daemon;
    }

    public SandboxClient Client() => SandboxClient.Connect(SocketPath);

    /// <summary>A signed package of a sample plugin with the given manifest fields.</summary>
    public byte[] Package(string plugin, string id, string extraManifest = "", bool sign = true)
    {
        var manifest = $$"""{"id":"{{id}}","name":"{{plugin}}","version":"1.0.0"{{extraManifest}}}""";
        var bytes = PackageWriter.Write([
            new PackageEntry("plugin.json", Encoding.UTF8.GetBytes(manifest)),
            new PackageEntry("plugin.wasm", File.ReadAllBytes(Path.Combine(AppContext.BaseDirectory, "plugins", plugin + ".wasm"))),
        ]);
        return sign ? PackageSigner.Sign(bytes, Key) : bytes;
    }

    public void Signal(string signal)
    {
        using var kill = Process.Start("kill", [$"-{signal}", Pid.ToString()]);
        kill.WaitForExit();
    }

    public bool WaitForExit(TimeSpan timeout) => _process.WaitForExit(timeout);

    private void Append(string? line)
    {
        if (line is null) return;
        lock (_log) _log.AppendLine(line);
    }

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            Signal("TERM");
            if (!_process.WaitForExit(20_000)) _process.Kill(entireProcessTree: true);
        }

        _process.Dispose();
        Key.Dispose();
        try
        {
            Directory.Delete(StateDir, recursive: true);
        }
        catch (IOException)
        {
            // a worker's files may vanish while we delete
        }
    }
}

/// <summary>One daemon shared by the tests of the "daemon" collection, with a policy covering their plugins.</summary>
public sealed class SharedDaemon : IDisposable
{
    public const string Policy = """
        {
          "default": { "permissions": ["storage", "system_info"] },
          "plugins": {
            "com.test.bare": { "permissions": [] },
            "com.test.patient": { "limits": { "fuel_per_call": 1000000000000 } },
            "com.test.sleeper": { "limits": { "fuel_per_call": 1000000000000, "timeout_ms": 20000 } },
            "com.test.phoenix": { "restart": "on-failure" },
            "com.test.victim": { "limits": { "fuel_per_call": 1000000000000, "timeout_ms": 20000 } },
            "com.test.victim2": { "limits": { "fuel_per_call": 1000000000000, "timeout_ms": 20000 } },
            "com.test.bomb": { "limits": { "fuel_per_call": 100000000000 } },
            "com.test.recursion": { "limits": { "fuel_per_call": 1000000000 } }
          }
        }
        """;

    public DaemonProcess Daemon { get; } = DaemonProcess.Start(Policy);

    public void Dispose() => Daemon.Dispose();
}

[CollectionDefinition("daemon")]
public sealed class DaemonCollection : ICollectionFixture<SharedDaemon>;
