using Connectias.Sandbox.Audit;
using Connectias.Sandbox.Daemon.Events;
using Connectias.Sandbox.Daemon.Lifecycle;
using Connectias.Sandbox.Daemon.Policy;
using Connectias.Sandbox.Daemon.Telemetry;
using Connectias.Sandbox.Packaging;
using Connectias.Sandbox.V1;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;

namespace Connectias.Sandbox.Daemon.UnitTests;

/// <summary>A real lifecycle over a real audit log in a scratch directory, and the event hub it publishes to.</summary>
internal sealed class LifecycleHarness : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("connectias-lifecycle-").FullName;
    private readonly ServiceProvider _meters = new ServiceCollection().AddMetrics().BuildServiceProvider();

    public LifecycleHarness()
    {
        Audit = new AuditLog(_directory);
        Lifecycle = new PluginLifecycle(Events, new AuditTrail(Audit, Events, AdminPolicy.BuiltIn, Metrics(_meters), NullLogger<AuditTrail>.Instance));
    }

    /// <summary>The daemon's metrics with nothing listening, for code under test that counts.</summary>
    public static DaemonMetrics Metrics(IServiceProvider services) => new(services.GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>());

    public AuditLog Audit { get; }
    public EventHub Events { get; } = new();
    public PluginLifecycle Lifecycle { get; }

    /// <summary>A plugin in <paramref name="state"/> with the built-in grant (and <paramref name="restart"/>), as the daemon would hold it.</summary>
    public static ManagedPlugin Plugin(string id, PluginState state, RestartPolicy restart = RestartPolicy.Never, params string[] dependencies) =>
        new(new PluginManifest { Id = id, Name = id, Version = SemanticVersion.Parse("1.0.0"), Dependencies = dependencies }, new byte[] { 0, 97, 115, 109 },
            SignerIdentity.Unsigned, AdminPolicy.BuiltIn.Default with { Restart = restart }, ResourceLimits.Defaults) { State = state };

    public void Dispose()
    {
        Audit.Dispose();
        _meters.Dispose();
        Directory.Delete(_directory, recursive: true);
    }
}
