namespace Connectias.Sandbox.Daemon.Tests;

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
