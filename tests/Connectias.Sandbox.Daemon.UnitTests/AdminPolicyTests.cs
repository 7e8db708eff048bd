using Connectias.Sandbox.Daemon.Policy;

namespace Connectias.Sandbox.Daemon.UnitTests;

/// <summary>The administrator's policy file (SPEC §5): what it grants, how limits merge, and every refusal naming its field.</summary>
public sealed class AdminPolicyTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("connectias-policy-").FullName;

    [Fact]
    public void The_built_in_policy_grants_storage_and_system_info_never_network()
    {
        var grant = AdminPolicy.BuiltIn.For("com.example.any");
        Assert.Equal(new HashSet<Permission> { Permission.Storage, Permission.SystemInfo }, grant.Permissions.ToHashSet());
        Assert.Equal(ResourceLimits.Defaults, grant.Limits);
        Assert.Equal(RestartPolicy.Never, grant.Restart);
        Assert.False(grant.PropagateTraceContext);
    }

    [Theory]
    [InlineData("{}", AuditFailureMode.Refuse)]
    [InlineData("""{ "audit_failure": "refuse" }""", AuditFailureMode.Refuse)]
    [InlineData("""{ "audit_failure": "continue", "default": { "permissions": [] } }""", AuditFailureMode.Continue)]
    public void Audit_failure_is_refuse_unless_the_policy_says_continue(string json, AuditFailureMode expected)
    {
        Assert.Equal(expected, Load(json).AuditFailure);
        Assert.Equal(AuditFailureMode.Refuse, AdminPolicy.BuiltIn.AuditFailure);
    }

    [Fact]
    public void Trace_context_propagation_is_off_unless_granted_and_a_plugin_entry_inherits_the_defaults()
    {
        var policy = Load("""
            {
              "default": { "propagate_trace_context": true },
              "plugins": { "com.example.private": { "propagate_trace_context": false }, "com.example.other": { "permissions": [] } }
            }
            """);
        Assert.True(policy.For("com.example.unlisted").PropagateTraceContext);
        Assert.True(policy.For("com.example.other").PropagateTraceContext);
        Assert.False(policy.For("com.example.private").PropagateTraceContext);
        Assert.False(Load("""{ "plugins": { "com.example.x": { "permissions": ["network"] } } }""").For("com.example.x").PropagateTraceContext);
    }

    [Fact]
    public void A_plugin_entry_replaces_permissions_and_merges_limits_key_by_key_over_the_default()
    {
        var policy = Load("""
            {
              // comments are allowed
              "default": { "permissions": ["storage"], "limits": { "memory_bytes": 1000, "timeout_ms": 50 } },
              "plugins": {
                "com.example.weather": {
                  "permissions": ["network", "storage"],
                  "allowed_hosts": ["api.example.com", "127.0.0.1:8080"],
                  "allow_private_hosts": ["127.0.0.1:8080"],
                  "limits": { "fuel_per_call": 5000000, "requests_per_minute": 7 },
                  "restart": "on-failure"
                }
              }
            }
            """);
        var weather = policy.For("com.example.weather");
        Assert.Equal(new HashSet<Permission> { Permission.Network, Permission.Storage }, weather.Permissions.ToHashSet());
        Assert.Equal(ResourceLimits.Defaults with { MemoryBytes = 1000, TimeoutMs = 50, FuelPerCall = 5_000_000, RequestsPerMinute = 7 }, weather.Limits);
        Assert.Equal(["api.example.com", "127.0.0.1:8080"], weather.AllowedHosts.Select(h => h.Text));
        Assert.Equal(RestartPolicy.OnFailure, weather.Restart);

        var other = policy.For("com.example.other");
        Assert.Equal([Permission.Storage], other.Permissions);
        Assert.Equal(ResourceLimits.Defaults with { MemoryBytes = 1000, TimeoutMs = 50 }, other.Limits);
    }

    [Theory]
    [InlineData("[]", "must be a JSON object")]
    [InlineData("""{ "default": [] }""", "'default' must be an object")]
    [InlineData("""{ "default": { "permissions": ["root"] } }""", "'default.permissions' has unknown permission 'root'")]
    [InlineData("""{ "default": { "permissions": "storage" } }""", "'default.permissions' must be an array of strings")]
    [InlineData("""{ "default": { "limits": { "memory_bytes": -1 } } }""", "'default.limits.memory_bytes' must be a whole number")]
    [InlineData("""{ "default": { "limits": { "timeout_ms": "soon" } } }""", "'default.limits.timeout_ms' must be a whole number")]
    [InlineData("""{ "default": { "limits": [] } }""", "'default.limits' must be an object")]
    [InlineData("""{ "plugins": [] }""", "'plugins' must be an object")]
    [InlineData("""{ "plugins": { "Not An Id": {} } }""", "'Not An Id' is not a plugin id")]
    [InlineData("""{ "plugins": { "com.example.x": { "restart": "always" } } }""", "'plugins.com.example.x.restart' must be")]
    [InlineData("""{ "plugins": { "com.example.x": { "allowed_hosts": ["http://x"] } } }""", "'plugins.com.example.x.allowed_hosts' entry 'http://x'")]
    [InlineData("""{ "default": {}, "default": {} }""", "policy")]
    [InlineData("""{ "defaults": {} }""", "unknown key 'defaults'")]
    [InlineData("""{ "default": { "permission": ["storage"] } }""", "unknown key 'default.permission'")]
    [InlineData("""{ "plugins": { "com.example.x": { "limits": { "memory": 1 } } } }""", "unknown key 'plugins.com.example.x.limits.memory'")]
    [InlineData("""{ "audit_failure": "ignore" }""", "'audit_failure' must be \"refuse\" or \"continue\"")]
    [InlineData("""{ "audit_failure": "Refuse" }""", "'audit_failure' must be \"refuse\" or \"continue\"")]
    [InlineData("""{ "audit_failure": true }""", "'audit_failure' must be \"refuse\" or \"continue\"")]
    [InlineData("""{ "audit_failure": null }""", "'audit_failure' must be \"refuse\" or \"continue\"")]
    [InlineData("""{ "default": { "audit_failure": "continue" } }""", "unknown key 'default.audit_failure'")]
    [InlineData("""{ "audit_failures": "continue" }""", "unknown key 'audit_failures'; known here: audit_failure, default, plugins")]
    [InlineData("""{ "default": { "limits": { "memory_bytes": 8589934592 } } }""", "'default.limits.memory_bytes' is 8589934592; this daemon allows at most 4294967296")]
    [InlineData("""{ "default": { "limits": { "timeout_ms": 3600001 } } }""", "'default.limits.timeout_ms' is 3600001; this daemon allows at most 3600000")]
    [InlineData("""{ "plugins": { "com.example.x": { "config": [] } } }""", "'plugins.com.example.x.config' must be an object")]
    [InlineData("""{ "plugins": { "com.example.x": { "restart": 1 } } }""", "'plugins.com.example.x.restart' must be")]
    [InlineData("""{ "plugins": { "com.example.x": { "propagate_trace_context": "yes" } } }""", "'plugins.com.example.x.propagate_trace_context' must be true or false")]
    [InlineData("""{ "default": { "propagate_tracecontext": true } }""", "unknown key 'default.propagate_tracecontext'")]
    [InlineData("""{ "default": """, "policy")]
    public void A_malformed_policy_is_refused_naming_the_field(string json, string expected)
    {
        var error = Assert.Throws<InvalidDataException>(() => Load(json));
        Assert.Contains(expected, error.Message);
        Assert.Contains(Path.Combine(_directory, "policy.json"), error.Message);
    }

    [Fact]
    public void Config_comes_from_the_plugins_entry_else_the_default_and_merges_over_the_manifests_key_by_key()
    {
        var policy = Load("""
            {
              "default": { "config": { "region": "eu" } },
              "plugins": {
                "com.example.weather": { "config": { "units": "metric", "extra": { "deep": [1, 2] } } },
                "com.example.other": { "permissions": [] }
              }
            }
            """);
        var manifest = ConfigOf("""{ "units": "imperial", "retries": 3 }""");
        Assert.Equal("""{"units":"metric","retries":3,"extra":{ "deep": [1, 2] }}""", Json(manifest.MergedWith(policy.For("com.example.weather").Config)));
        Assert.Equal("""{"units":"imperial","retries":3,"region":"eu"}""", Json(manifest.MergedWith(policy.For("com.example.other").Config)));
        Assert.Equal("{}", Json(PluginConfig.Empty.MergedWith(AdminPolicy.BuiltIn.For("com.example.x").Config)));
    }

    private static PluginConfig ConfigOf(string json)
    {
        using var document = System.Text.Json.JsonDocument.Parse(json);
        return PluginConfig.FromObject(document.RootElement);
    }

    private static string Json(PluginConfig config)
    {
        using var buffer = new MemoryStream();
        using (var writer = new System.Text.Json.Utf8JsonWriter(buffer)) config.WriteTo(writer);
        return System.Text.Encoding.UTF8.GetString(buffer.ToArray());
    }

    [Fact]
    public void A_missing_policy_file_is_refused_with_its_path() =>
        Assert.Contains("nothing-here.json", Assert.Throws<InvalidDataException>(() => AdminPolicy.Load(Path.Combine(_directory, "nothing-here.json"))).Message);

    private AdminPolicy Load(string json)
    {
        var path = Path.Combine(_directory, "policy.json");
        File.WriteAllText(path, json);
        return AdminPolicy.Load(path);
    }

    public void Dispose() => Directory.Delete(_directory, recursive: true);
}
