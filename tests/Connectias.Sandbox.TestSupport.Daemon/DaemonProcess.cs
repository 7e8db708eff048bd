using System.Diagnostics;
using System.Text;
using Connectias.Sandbox.Client;
using Connectias.Sandbox.Packaging;

namespace Connectias.Sandbox.TestSupport;

/// <summary>A real connectias-sandboxd with its own state directory, trust store and policy.</summary>
public sealed class DaemonProcess : IDisposable
{
    /// <summary>The daemon, copied into the output directory of every project that references the daemon project.</summary>
    public static readonly string Dll = Path.Combine(AppContext.BaseDirectory, "connectias-sandboxd.dll");

    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(60);
    private readonly Process _process;
    private readonly StringBuilder _log = new();

    private DaemonProcess(Process process, string stateDir, SigningKey key)
    {
        _process = process;
        StateDir = stateDir;
        Key = key;
        SocketPath = Path.Combine(RunDirectory, "sandboxd.sock");
    }

    public string StateDir { get; }

    /// <summary>STATE/run: the daemon's socket, and plugins/ID-N, one private directory per worker incarnation.</summary>
    public string RunDirectory => Path.Combine(StateDir, "run");

    public string SocketPath { get; }

    /// <summary>The test key the daemon trusts (the only one: the development key is off).</summary>
    public SigningKey Key { get; }

    public int Pid => _process.Id;
    public bool HasExited => _process.HasExited;
    public int ExitCode => _process.ExitCode;
    public string AuditPath => Path.Combine(StateDir, "audit", "audit.jsonl");

    /// <summary>Everything the daemon wrote to stdout and stderr so far.</summary>
    public string Log
    {
        get
        {
            lock (_log) return _log.ToString();
        }
    }

    /// <summary>Starts a daemon that trusts a fresh test key; <paramref name="settings"/> are Sandbox__* environment settings.</summary>
    public static DaemonProcess Start(string policyJson, params (string Key, string Value)[] settings) =>
        Start(new DaemonStartInfo { PolicyJson = policyJson, Settings = settings });

    /// <summary>Starts a daemon that trusts a fresh test key and returns once it listens.</summary>
    public static DaemonProcess Start(DaemonStartInfo info)
    {
        var stateDir = info.StateDir ?? Directory.CreateTempSubdirectory("connectias-daemon-").FullName;
        var trust = Directory.CreateDirectory(Path.Combine(stateDir, "trust")).FullName;
        var key = SigningKey.Generate(SignatureAlgorithm.Ec);
        File.WriteAllText(Path.Combine(trust, "test.pub"), key.ExportPublicKeyPem());
        List<string> args = ["--state-dir", stateDir, "--no-dev-key"];
        if (info.PolicyJson is not null)
        {
            var policy = Path.Combine(stateDir, "policy.json");
            File.WriteAllText(policy, info.PolicyJson);
            args.AddRange(["--policy", policy]);
        }

        args.AddRange(info.Arguments);
        var process = Process.Start(DotnetProgram.StartInfo(Dll, args, SettingsEnvironment(info.Settings).Concat(info.Environment)))!;
        var daemon = new DaemonProcess(process, stateDir, key);
        process.OutputDataReceived += (_, e) => daemon.Append(e.Data);
        process.ErrorDataReceived += (_, e) => daemon.Append(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        // The log line, not the socket file: the daemon says it listens only once the socket has its mode
        // and every earlier line (the sandbox in force, the worker command) has reached the log.
        var clock = Stopwatch.StartNew();
        while (!daemon.Log.Contains("listening on", StringComparison.Ordinal))
        {
            if (process.HasExited || clock.Elapsed > StartTimeout)
            {
                var log = daemon.Log;
                daemon.Dispose();
                throw new InvalidOperationException($"the daemon did not start:\n{log}");
            }

            Thread.Sleep(20);
        }

        return daemon;
    }

    /// <summary>Runs connectias-sandboxd to its exit, e.g. for --help or a refused setting.</summary>
    public static ProgramExit RunToExit(params string[] args) => RunToExit(args, []);

    /// <summary>Runs connectias-sandboxd to its exit with Sandbox__* environment <paramref name="settings"/>.</summary>
    public static ProgramExit RunToExit(IReadOnlyList<string> args, IReadOnlyList<(string Name, string Value)> settings) =>
        DotnetProgram.Run(Dll, args, SettingsEnvironment(settings));

    public SandboxClient Client() => SandboxClient.Connect(SocketPath);

    /// <summary>The audit log's whole records so far: event, plugin id and details (a line being appended is left for next time).</summary>
    public IReadOnlyList<(string Event, string PluginId, System.Text.Json.JsonElement Details)> AuditRecords()
    {
        var records = new List<(string, string, System.Text.Json.JsonElement)>();
        using var reader = new StreamReader(new FileStream(AuditPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite));
        while (reader.ReadLine() is { } line)
        {
            try
            {
                var root = System.Text.Json.JsonDocument.Parse(line).RootElement;
                records.Add((root.GetProperty("event").GetString()!, root.GetProperty("plugin_id").GetString()!, root.GetProperty("details").Clone()));
            }
            catch (System.Text.Json.JsonException)
            {
                // the daemon was appending this line as we read it: it is read whole next time
            }
        }

        return records;
    }

    /// <summary>A package of a sample plugin with the given manifest fields, signed with <see cref="Key"/> unless <paramref name="sign"/> is false.</summary>
    public byte[] Package(string plugin, string id, string extraManifest = "", bool sign = true, string version = "1.0.0") =>
        SamplePlugins.Package(plugin, id, sign ? Key : null, extraManifest, version);

    /// <summary>A signed package of a module the test made.</summary>
    public byte[] PackageModule(byte[] module, string id, string extraManifest = "") => SamplePlugins.PackageModule(module, "generated", id, Key, extraManifest);

    /// <summary>The run directories (STATE/run/plugins/ID-N) the daemon holds for <paramref name="pluginId"/> now.</summary>
    public IReadOnlyList<string> PluginRunDirectories(string pluginId)
    {
        var plugins = Path.Combine(RunDirectory, "plugins");
        if (!Directory.Exists(plugins)) return [];
        // ID-N with N a number: the id com.a must not match the directory of com.a-b.
        return Directory.GetDirectories(plugins, pluginId + "-*")
            .Where(path => Path.GetFileName(path)[(pluginId.Length + 1)..].All(char.IsAsciiDigit))
            .ToList();
    }

    public void Signal(string signal)
    {
        using var kill = Process.Start("kill", [$"-{signal}", Pid.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        kill.WaitForExit();
    }

    public bool WaitForExit(TimeSpan timeout) => _process.WaitForExit(timeout);

    private static IEnumerable<(string, string)> SettingsEnvironment(IEnumerable<(string Name, string Value)> settings) =>
        settings.Select(setting => ($"Sandbox__{setting.Name}", setting.Value));

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
