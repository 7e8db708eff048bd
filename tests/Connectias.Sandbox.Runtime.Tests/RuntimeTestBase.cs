namespace Connectias.Sandbox.Runtime.Tests;

/// <summary>One engine for the whole test run, as one worker process has.</summary>
public sealed class EngineFixture : IDisposable
{
    public WasmEngine Engine { get; } = new();

    public void Dispose() => Engine.Dispose();
}

[CollectionDefinition("engine")]
public sealed class EngineCollection : ICollectionFixture<EngineFixture>;

/// <summary>Collects a plugin's log lines.</summary>
internal sealed class RecordingLog : IPluginLog
{
    private readonly Lock _lock = new();
    private readonly List<(PluginLogLevel Level, PluginLogSource Source, string Message)> _lines = [];

    public IReadOnlyList<(PluginLogLevel Level, PluginLogSource Source, string Message)> Lines
    {
        get
        {
            lock (_lock) return _lines.ToList();
        }
    }

    public void Write(PluginLogLevel level, PluginLogSource source, string message)
    {
        lock (_lock) _lines.Add((level, source, message));
    }
}

public abstract class RuntimeTestBase(EngineFixture fixture) : IDisposable
{
    private readonly List<PluginInstance> _loaded = [];
    protected readonly string StorageDirectory = Directory.CreateTempSubdirectory("connectias-storage-").FullName;

    /// <summary>What the well-behaved sample imports: it is refused without these.</summary>
    protected static readonly IReadOnlySet<Permission> HelloPermissions = new HashSet<Permission> { Permission.Storage, Permission.SystemInfo };

    protected WasmEngine Engine => fixture.Engine;

    protected PluginInstance Load(string plugin, ResourceLimits? limits = null, IReadOnlySet<Permission>? permissions = null,
        IReadOnlyList<string>? commands = null, IPluginLog? log = null, INetworkBroker? broker = null, string? storageDirectory = null,
        PluginBudgets? budgets = null)
    {
        var instance = PluginInstance.Load(Engine, Setup(plugin, limits, permissions, commands, log, broker, storageDirectory, budgets));
        _loaded.Add(instance);
        return instance;
    }

    protected PluginSetup Setup(string plugin, ResourceLimits? limits = null, IReadOnlySet<Permission>? permissions = null,
        IReadOnlyList<string>? commands = null, IPluginLog? log = null, INetworkBroker? broker = null, string? storageDirectory = null,
        PluginBudgets? budgets = null) => new()
    {
        Budgets = budgets ?? PluginBudgets.Defaults,
        PluginId = "com.example." + plugin.Replace('_', '-'),
        Version = "1.0.0",
        Module = SamplePlugins.Wasm(plugin),
        Limits = limits ?? ResourceLimits.Defaults,
        Permissions = permissions ?? new HashSet<Permission>(),
        DeclaredCommands = commands,
        Log = log ?? NullPluginLog.Instance,
        NetworkBroker = broker,
        StorageDirectory = storageDirectory ?? StorageDirectory,
    };

    protected SandboxException LoadFails(string plugin, ResourceLimits? limits = null, IReadOnlySet<Permission>? permissions = null, INetworkBroker? broker = null) =>
        Assert.Throws<SandboxException>(() => Load(plugin, limits, permissions, broker: broker));

    protected static SandboxException CallFails(PluginInstance plugin, string command = "run", TimeSpan? deadline = null) =>
        Assert.Throws<SandboxException>(() => plugin.Execute(command, "{}"u8, deadline));

    /// <summary>After any hostile plugin the same engine must still load and run a good one.</summary>
    protected void AssertRuntimeSound()
    {
        var hello = Load("hello", permissions: HelloPermissions);
        Assert.Equal("Hello, sound!", System.Text.Encoding.UTF8.GetString(hello.Execute("greet", "sound"u8).Output));
    }

    public void Dispose()
    {
        foreach (var instance in _loaded) instance.Dispose();
        Directory.Delete(StorageDirectory, recursive: true);
    }
}
