using System.Text.Json;
using Connectias.Sandbox.TestSupport;

namespace Connectias.Sandbox.Daemon.Tests;

/// <summary>ctx.config (SPEC §1, §2, §5): the manifest's config with the policy's merged over it, and policies the daemon refuses.</summary>
public class PluginConfigTests
{
    [Fact]
    public async Task A_plugin_sees_its_manifests_config_with_the_policys_merged_over_it_key_by_key()
    {
        using var daemon = DaemonProcess.Start("""
            { "plugins": { "com.test.configured": { "permissions": ["storage", "system_info"], "config": { "units": "metric", "extra": { "on": true } } } } }
            """);
        using var client = daemon.Client();
        await client.LoadAsync(daemon.Package("hello", "com.test.configured",
            ",\"permissions\":[\"storage\",\"system_info\"],\"config\":{\"units\":\"imperial\",\"retries\":3}"));
        using var context = JsonDocument.Parse((await client.ExecuteAsync("com.test.configured", "context")).Output.Memory);
        var config = context.RootElement.GetProperty("config");
        Assert.Equal(["units", "retries", "extra"], config.EnumerateObject().Select(p => p.Name));
        Assert.Equal("metric", config.GetProperty("units").GetString());
        Assert.Equal(3, config.GetProperty("retries").GetInt32());
        Assert.True(config.GetProperty("extra").GetProperty("on").GetBoolean());

        // Without a policy config the manifest's defaults stand; without either, ctx.config is {}.
        await client.LoadAsync(daemon.Package("hello", "com.test.defaults", ",\"permissions\":[\"storage\",\"system_info\"],\"config\":{\"units\":\"imperial\"}"));
        Assert.Contains("\"config\":{\"units\":\"imperial\"}", (await client.ExecuteAsync("com.test.defaults", "context")).Output.ToStringUtf8());
        await client.LoadAsync(daemon.Package("hello", "com.test.bare-config", ",\"permissions\":[\"storage\",\"system_info\"]"));
        Assert.Contains("\"config\":{}", (await client.ExecuteAsync("com.test.bare-config", "context")).Output.ToStringUtf8());
    }

    [Fact]
    public async Task A_manifest_config_that_is_not_an_object_or_too_big_is_CORRUPTED_DATA()
    {
        using var daemon = DaemonProcess.Start("{}");
        using var client = daemon.Client();
        // Unsigned: the signer would refuse to sign such a manifest; the daemon reads the manifest before any signature.
        await ApiErrorTests.Refused(() => client.LoadAsync(daemon.Package("noop", "com.test.listconfig", ",\"config\":[1]", sign: false)),
            Grpc.Core.StatusCode.InvalidArgument, "CORRUPTED_DATA");
        var big = new string('x', 17 * 1024);
        await ApiErrorTests.Refused(() => client.LoadAsync(daemon.Package("noop", "com.test.bigconfig", $",\"config\":{{\"blob\":\"{big}\"}}", sign: false)),
            Grpc.Core.StatusCode.InvalidArgument, "CORRUPTED_DATA");
    }

    [Theory]
    [InlineData("""{ "default": { "permisions": ["storage"] } }""", "unknown key 'default.permisions'")]
    [InlineData("""{ "default": { "limits": { "memory_bytes": 99999999999 } } }""", "'default.limits.memory_bytes' is 99999999999; this daemon allows at most")]
    [InlineData("""{ "default": { "limits": { "fuel_per_call": "lots" } } }""", "'default.limits.fuel_per_call' must be a whole number")]
    [InlineData("""{ "audit_failure": "ignore" }""", "'audit_failure' must be \"refuse\" or \"continue\"")]
    public void A_policy_with_an_unknown_key_a_wrong_type_or_a_limit_over_the_maximum_stops_the_daemon_naming_key_and_file(string policy, string expected)
    {
        var state = Directory.CreateTempSubdirectory("connectias-badpolicy-").FullName;
        try
        {
            var path = Path.Combine(state, "policy.json");
            File.WriteAllText(path, policy);
            var exit = DaemonProcess.RunToExit("--state-dir", state, "--policy", path);
            Assert.Equal(1, exit.ExitCode);
            Assert.Contains(expected, exit.Error);
            Assert.Contains(path, exit.Error);
        }
        finally
        {
            Directory.Delete(state, recursive: true);
        }
    }
}
