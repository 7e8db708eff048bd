using Connectias.Sandbox.Contracts;

namespace Connectias.Sandbox.Daemon.UnitTests;

/// <summary>The one limits type: its field table, the effective limits, and the public mapping.</summary>
public class ResourceLimitsTests
{
    [Fact]
    public void The_field_table_has_a_row_for_every_limit_with_distinct_names()
    {
        var properties = typeof(ResourceLimits).GetProperties().Where(p => p.PropertyType == typeof(long)).Select(p => p.Name).ToList();
        Assert.Equal(properties.Count, ResourceLimits.Fields.Count);
        Assert.Equal(ResourceLimits.Fields.Count, ResourceLimits.Fields.Select(f => f.Name).Distinct().Count());
        foreach (var field in ResourceLimits.Fields)
        {
            var changed = field.With(ResourceLimits.Defaults, field.Get(ResourceLimits.Defaults) + 1);
            Assert.Equal(field.Get(ResourceLimits.Defaults) + 1, field.Get(changed));
            Assert.Single(properties, name => (long)typeof(ResourceLimits).GetProperty(name)!.GetValue(changed)! != (long)typeof(ResourceLimits).GetProperty(name)!.GetValue(ResourceLimits.Defaults)!);
        }
    }

    [Fact]
    public void The_spec_defaults()
    {
        Assert.Equal(104_857_600, ResourceLimits.Defaults.MemoryBytes);
        Assert.Equal(1_000_000, ResourceLimits.Defaults.FuelPerCall);
        Assert.Equal(30_000, ResourceLimits.Defaults.TimeoutMs);
        Assert.Equal(10_485_760, ResourceLimits.Defaults.StorageBytes);
        Assert.Equal(100, ResourceLimits.Defaults.RequestsPerMinute);
        Assert.Equal(10_485_760, ResourceLimits.Defaults.MaxBodyBytes);
        Assert.Equal(30_000, ResourceLimits.Defaults.NetworkTimeoutMs);
    }

    [Fact]
    public void A_request_is_capped_by_the_policy_and_what_a_manifest_cannot_ask_for_is_the_cap()
    {
        var requested = ResourceLimits.Defaults with { MemoryBytes = 10, FuelPerCall = 5_000_000, OutputBytes = 1 };
        var caps = ResourceLimits.Defaults with { FuelPerCall = 2_000_000, OutputBytes = 8_000_000, RequestsPerMinute = 3 };
        var effective = ResourceLimits.Effective(requested, caps);
        Assert.Equal(10, effective.MemoryBytes);          // asked for less
        Assert.Equal(2_000_000, effective.FuelPerCall);   // asked for more than the cap
        Assert.Equal(8_000_000, effective.OutputBytes);   // not a manifest's to ask: the cap
        Assert.Equal(3, effective.RequestsPerMinute);
    }

    [Fact]
    public void The_public_mapping_carries_every_limit()
    {
        var limits = new ResourceLimits { MemoryBytes = 1, FuelPerCall = 2, TimeoutMs = 3, StorageBytes = 4, OutputBytes = 5, RequestsPerMinute = 6, MaxBodyBytes = 7, NetworkTimeoutMs = 8 };
        var proto = limits.ToProto();
        Assert.Equal([1ul, 2, 3, 4, 5, 6, 7, 8], new[] { proto.MemoryBytes, proto.FuelPerCall, proto.TimeoutMs, proto.StorageBytes, proto.OutputBytes, proto.RequestsPerMinute, proto.MaxBodyBytes, proto.NetworkTimeoutMs });
        Assert.Equal(ResourceLimits.Fields.Count, V1.EffectiveLimits.Descriptor.Fields.InDeclarationOrder().Count);
    }

    [Fact]
    public void The_plugin_context_lists_the_limits_a_plugin_sees()
    {
        using var context = System.Text.Json.JsonDocument.Parse(PluginContextJson.Build("com.example.a", "1.2.3", [Permission.Storage], ResourceLimits.Defaults));
        var limits = context.RootElement.GetProperty("limits");
        Assert.Equal(["memory_bytes", "fuel_per_call", "timeout_ms", "storage_bytes", "output_bytes"], limits.EnumerateObject().Select(p => p.Name));
        Assert.Equal(ResourceLimits.Defaults.MemoryBytes, limits.GetProperty("memory_bytes").GetInt64());
        Assert.Equal(["storage"], context.RootElement.GetProperty("permissions").EnumerateArray().Select(p => p.GetString()));
    }
}
