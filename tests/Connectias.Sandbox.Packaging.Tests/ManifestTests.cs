using System.Text;
using static Connectias.Sandbox.Packaging.Tests.TestPackages;

namespace Connectias.Sandbox.Packaging.Tests;

/// <summary>Every manifest rule of SPEC §1, each through a whole package as the daemon would read it.</summary>
public class ManifestTests
{
    private const string Base = "\"id\":\"com.example.hello\",\"name\":\"Hello\",\"version\":\"1.2.3\"";

    private static PluginManifest Read(string extraFields) =>
        new PackageReader().Read(WithManifest("{" + Base + extraFields + "}")).Manifest;

    [Fact]
    public void Defaults_apply_when_optional_fields_are_absent()
    {
        var manifest = Read("");
        Assert.Equal(1, manifest.AbiVersion);
        Assert.Equal("plugin.wasm", manifest.EntryPoint);
        Assert.Empty(manifest.Permissions);
        Assert.Null(manifest.Commands);
        Assert.Equal(104857600, manifest.ResourceLimits.MemoryBytes);
        Assert.Equal(1_000_000, manifest.ResourceLimits.FuelPerCall);
        Assert.Equal(30_000, manifest.ResourceLimits.TimeoutMs);
        Assert.Equal(10485760, manifest.ResourceLimits.StorageBytes);
    }

    [Fact]
    public void Every_field_is_read()
    {
        var manifest = Read("""
            ,"author":"Ada","description":"Says hello","abi_version":1,
            "min_core_version":"1.0.0","max_core_version":"1.9.0","entry_point":"plugin.wasm",
            "permissions":["network","Storage","SystemInfo","storage"],"allowed_hosts":["api.example.com","*.example.org:8443","127.0.0.1:8080","[::1]:9000"],
            "resource_limits":{"memory_bytes":1048576,"fuel_per_call":5000,"timeout_ms":100,"storage_bytes":0},
            "commands":[{"name":"greet","description":"greets"},{"name":"count"}],"dependencies":["com.example.base"],
            "unknown_field":{"ignored":true}
            """.Replace("\n", "", StringComparison.Ordinal));
        Assert.Equal("Ada", manifest.Author);
        Assert.Equal([Permission.Network, Permission.Storage, Permission.SystemInfo], manifest.Permissions);
        Assert.Equal(["api.example.com", "*.example.org:8443", "127.0.0.1:8080", "[::1]:9000"], manifest.AllowedHosts.Select(h => h.Text));
        Assert.Equal(1048576, manifest.ResourceLimits.MemoryBytes);
        Assert.Equal(0, manifest.ResourceLimits.StorageBytes);
        Assert.Equal(["greet", "count"], manifest.Commands!.Select(c => c.Name));
        Assert.Equal(["com.example.base"], manifest.Dependencies);
    }

    [Theory]
    [InlineData("""{"name":"Hello","version":"1.2.3"}""", "'id' is required")]
    [InlineData("""{"id":5,"name":"Hello","version":"1.2.3"}""", "'id' must be a string")]
    [InlineData("""{"id":"Com.Example","name":"Hello","version":"1.2.3"}""", "reverse-domain")]
    [InlineData("""{"id":"hello","name":"Hello","version":"1.2.3"}""", "reverse-domain")]
    [InlineData("""{"id":"com.example.","name":"Hello","version":"1.2.3"}""", "reverse-domain")]
    [InlineData("""{"id":"1com.example","name":"Hello","version":"1.2.3"}""", "reverse-domain")]
    [InlineData("""{"id":"com.example.hello","version":"1.2.3"}""", "'name' is required")]
    [InlineData("""{"id":"com.example.hello","name":"  ","version":"1.2.3"}""", "'name' must not be empty")]
    [InlineData("""{"id":"com.example.hello","name":"Hello"}""", "'version' is required")]
    [InlineData("""{"id":"com.example.hello","name":"Hello","version":"1.2"}""", "SemVer")]
    [InlineData("""{"id":"com.example.hello","name":"Hello","version":"01.2.3"}""", "SemVer")]
    [InlineData("""{"id":"com.example.hello","name":"Hello","version":"v1.2.3"}""", "SemVer")]
    [InlineData("""{"id":"com.example.hello","name":"Hello","version":1}""", "'version' must be a string")]
    [InlineData("""[1,2,3]""", "must be a JSON object")]
    [InlineData("""{"id":"com.example.hello",""", "not valid UTF-8 JSON")]
    [InlineData("""{"id":"com.example.hello","id":"com.example.other","name":"Hello","version":"1.2.3"}""", "Duplicate property")]
    public void Identity_rules(string manifest, string problem) => AssertRefused(WithManifest(manifest), ErrorReason.CorruptedData, problem);

    [Fact]
    public void An_id_longer_than_128_characters_is_refused() =>
        AssertRefused(WithManifest("{\"id\":\"com." + new string('a', 125) + "\",\"name\":\"x\",\"version\":\"1.0.0\"}"), ErrorReason.CorruptedData, "at most 128");

    [Fact]
    public void An_id_of_exactly_128_characters_is_accepted() =>
        Assert.Equal(128, new PackageReader().Read(WithManifest("{\"id\":\"com." + new string('a', 124) + "\",\"name\":\"x\",\"version\":\"1.0.0\"}")).Manifest.Id.Length);

    [Theory]
    [InlineData(",\"author\":42", "'author' must be a string")]
    [InlineData(",\"description\":[]", "'description' must be a string")]
    [InlineData(",\"abi_version\":\"1\"", "'abi_version' must be a whole number")]
    [InlineData(",\"abi_version\":1.5", "'abi_version' must be a whole number")]
    [InlineData(",\"abi_version\":0", "'abi_version' must be at least 1")]
    [InlineData(",\"min_core_version\":\"1\"", "'min_core_version'")]
    [InlineData(",\"max_core_version\":\"latest\"", "'max_core_version'")]
    [InlineData(",\"entry_point\":\"../plugin.wasm\"", "'..' segment")]
    [InlineData(",\"entry_point\":\"/plugin.wasm\"", "absolute path")]
    [InlineData(",\"entry_point\":\"plugin.json\"", "must name the module file")]
    [InlineData(",\"entry_point\":\"missing.wasm\"", "no 'missing.wasm'")]
    [InlineData(",\"permissions\":\"network\"", "'permissions' must be an array")]
    [InlineData(",\"permissions\":[\"network\",\"root\"]", "unknown permission 'root'")]
    [InlineData(",\"permissions\":[\"NETWORK\"]", "unknown permission 'NETWORK'")]
    [InlineData(",\"permissions\":[1]", "only strings")]
    [InlineData(",\"allowed_hosts\":[\"http://api.example.com\"]", "'allowed_hosts' entry")]
    [InlineData(",\"allowed_hosts\":[\"*.com\"]", "at least two labels")]
    [InlineData(",\"allowed_hosts\":[\"api.example.com:99999\"]", "port")]
    [InlineData(",\"allowed_hosts\":[\"api.*.com\"]", "not a valid host name")]
    [InlineData(",\"allowed_hosts\":[\"::1\"]", "brackets")]
    [InlineData(",\"resource_limits\":[]", "'resource_limits' must be an object")]
    [InlineData(",\"resource_limits\":{\"memory_bytes\":-1}", "'resource_limits.memory_bytes' must be at least 1")]
    [InlineData(",\"resource_limits\":{\"fuel_per_call\":\"lots\"}", "'resource_limits.fuel_per_call' must be a whole number")]
    [InlineData(",\"resource_limits\":{\"timeout_ms\":0}", "'resource_limits.timeout_ms' must be at least 1")]
    [InlineData(",\"resource_limits\":{\"storage_bytes\":1e999}", "'resource_limits.storage_bytes' must be a whole number")]
    [InlineData(",\"commands\":{}", "'commands' must be an array")]
    [InlineData(",\"commands\":[{\"description\":\"no name\"}]", "'commands[0].name' is required")]
    [InlineData(",\"commands\":[{\"name\":\"\"}]", "'commands[0].name' must be 1 to 256")]
    [InlineData(",\"commands\":[{\"name\":\"a\"},{\"name\":\"a\"}]", "names 'a' twice")]
    [InlineData(",\"dependencies\":[\"Not-An-Id\"]", "not a valid plugin id")]
    [InlineData(",\"dependencies\":[\"com.example.hello\"]", "names the plugin itself")]
    [InlineData(",\"config\":[1,2]", "'config' must be an object")]
    [InlineData(",\"config\":\"units=metric\"", "'config' must be an object")]
    public void Field_rules(string extraFields, string problem) =>
        AssertRefused(WithManifest("{" + Base + extraFields + "}"), ErrorReason.CorruptedData, problem);

    [Fact]
    public void Config_is_an_object_of_at_most_16_KiB_kept_member_by_member()
    {
        var manifest = Read(""","config":{"units":"metric","retries":3,"nested":{"a":[1,2]}}""");
        Assert.Equal([("units", "\"metric\""), ("retries", "3"), ("nested", "{\"a\":[1,2]}")], manifest.Config.Members.Select(m => (m.Key, m.Value)));
        Assert.Empty(Read("").Config.Members);

        var justFits = $$""","config":{"blob":"{{new string('x', 16 * 1024 - 11)}}"}""";
        Assert.Single(Read(justFits).Config.Members);
        var tooBig = $$""","config":{"blob":"{{new string('x', 16 * 1024 - 10)}}"}""";
        AssertRefused(WithManifest("{" + Base + tooBig + "}"), ErrorReason.CorruptedData, "field 'config' is 16385 bytes of JSON; at most 16384");
    }

    [Fact]
    public void Invalid_utf8_is_refused()
    {
        var bytes = Encoding.UTF8.GetBytes("{" + Base + ",\"author\":\"X\"}");
        bytes[^3] = 0xFF;
        var files = ValidFiles();
        files["plugin.json"] = bytes;
        AssertRefused(Zip(files.Select(pair => new RawEntry(pair.Key, pair.Value)).ToArray()), ErrorReason.CorruptedData, "UTF-8");
    }

    [Fact]
    public void A_byte_order_mark_is_tolerated()
    {
        var files = ValidFiles();
        files["plugin.json"] = [0xEF, 0xBB, 0xBF, .. Encoding.UTF8.GetBytes("{" + Base + "}")];
        Assert.Equal("com.example.hello", new PackageReader().Read(Zip(files.Select(pair => new RawEntry(pair.Key, pair.Value)).ToArray())).Manifest.Id);
    }

    [Fact]
    public void An_entry_point_in_a_subdirectory_is_found()
    {
        var package = new PackageReader().Read(Zip(
            new RawEntry("plugin.json", Encoding.UTF8.GetBytes("{" + Base + ",\"entry_point\":\"bin/main.wasm\"}")),
            new RawEntry("bin/main.wasm", EmptyModule)));
        Assert.Equal("bin/main.wasm", package.ModuleEntry.Path);
    }

    public static TheoryData<string, string> IncompatibleVersions => new()
    {
        { ",\"abi_version\":2", "plugin ABI version 2" },
        { ",\"min_core_version\":\"1.0.1\"", "needs core version 1.0.1 or newer" },
        { ",\"min_core_version\":\"2.0.0\"", "needs core version 2.0.0 or newer" },
        { ",\"max_core_version\":\"0.9.9\"", "up to 0.9.9" },
        { ",\"max_core_version\":\"1.0.0-rc.1\"", "up to 1.0.0-rc.1" },
    };

    [Theory]
    [MemberData(nameof(IncompatibleVersions))]
    public void Versions_this_host_cannot_run_are_UNSUPPORTED_VERSION(string extraFields, string problem)
    {
        var manifest = Read(extraFields);
        var error = Assert.Throws<SandboxException>(() =>
            ManifestParser.CheckCompatibility(manifest, SemanticVersion.Parse(CoreVersion.Current), CoreVersion.SupportedAbiVersions));
        Assert.Equal(ErrorReason.UnsupportedVersion, error.Reason);
        Assert.Contains(problem, error.Message);
        Assert.Equal("com.example.hello", error.Metadata["plugin_id"]);
    }

    [Fact]
    public void A_range_that_includes_this_host_is_compatible() =>
        ManifestParser.CheckCompatibility(Read(",\"min_core_version\":\"1.0.0-alpha\",\"max_core_version\":\"1.0.0\""),
            SemanticVersion.Parse(CoreVersion.Current), CoreVersion.SupportedAbiVersions);
}

public class SemanticVersionTests
{
    [Theory]
    [InlineData("1.0.0-alpha", "1.0.0-alpha.1")]
    [InlineData("1.0.0-alpha.1", "1.0.0-alpha.beta")]
    [InlineData("1.0.0-alpha.beta", "1.0.0-beta")]
    [InlineData("1.0.0-beta.2", "1.0.0-beta.11")]
    [InlineData("1.0.0-rc.1", "1.0.0")]
    [InlineData("1.9.0", "1.10.0")]
    [InlineData("1.0.0", "2.0.0")]
    public void Precedence_follows_the_SemVer_specification(string lower, string higher)
    {
        Assert.True(SemanticVersion.Parse(lower).CompareTo(SemanticVersion.Parse(higher)) < 0);
        Assert.True(SemanticVersion.Parse(higher).CompareTo(SemanticVersion.Parse(lower)) > 0);
    }

    [Fact]
    public void Build_metadata_does_not_affect_precedence() =>
        Assert.Equal(0, SemanticVersion.Parse("1.0.0+build.5").CompareTo(SemanticVersion.Parse("1.0.0+other")));

    [Theory]
    [InlineData("1.0.0-")]
    [InlineData("1.0.0-01")]
    [InlineData("1.0")]
    [InlineData(" 1.0.0")]
    public void Malformed_versions_do_not_parse(string text) => Assert.False(SemanticVersion.TryParse(text, out _));
}

public class HostPatternTests
{
    [Theory]
    [InlineData("api.example.com", "api.example.com", 443, true)]
    [InlineData("api.example.com", "API.Example.com", 443, true)]
    [InlineData("api.example.com", "api.example.com", 8443, false)]
    [InlineData("api.example.com", "evil.com", 443, false)]
    [InlineData("*.example.com", "a.b.example.com", 443, true)]
    [InlineData("*.example.com", "example.com", 443, false)]
    [InlineData("*.example.com", "badexample.com", 443, false)]
    [InlineData("127.0.0.1:8080", "127.0.0.1", 8080, true)]
    [InlineData("127.0.0.1:8080", "127.0.0.1", 443, false)]
    [InlineData("[::1]:9000", "[::1]", 9000, true)]
    public void Matching(string pattern, string host, int port, bool expected)
    {
        Assert.True(HostPattern.TryParse(pattern, out var parsed, out _));
        Assert.Equal(expected, parsed!.Matches(host, port, schemeDefaultPort: 443));
    }
}
