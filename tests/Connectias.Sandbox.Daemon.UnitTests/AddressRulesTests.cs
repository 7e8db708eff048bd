using System.Net;
using Connectias.Sandbox.Daemon.Network;
using Connectias.Sandbox.Packaging;

namespace Connectias.Sandbox.Daemon.UnitTests;

/// <summary>Where the broker lets a plugin go (SPEC §3), and the allow-list operators are shown for it.</summary>
public class AddressRulesTests
{
    [Theory]
    [InlineData("127.0.0.1")]
    [InlineData("10.1.2.3")]
    [InlineData("172.16.0.1")]
    [InlineData("172.31.255.255")]
    [InlineData("192.168.1.1")]
    [InlineData("169.254.169.254")] // cloud metadata
    [InlineData("100.64.0.1")]      // carrier-grade NAT
    [InlineData("0.0.0.0")]
    [InlineData("224.0.0.1")]
    [InlineData("255.255.255.255")]
    [InlineData("192.0.0.8")]
    [InlineData("::1")]
    [InlineData("::")]
    [InlineData("fe80::1")]
    [InlineData("fd00:ec2::254")]   // cloud metadata over IPv6
    [InlineData("ff02::1")]
    [InlineData("::ffff:127.0.0.1")] // IPv4-mapped loopback
    [InlineData("::ffff:10.0.0.1")]
    public void Non_public_addresses_are_refused(string address) => Assert.True(AddressRules.IsNonPublic(IPAddress.Parse(address)));

    [Theory]
    [InlineData("93.184.216.34")]
    [InlineData("1.1.1.1")]
    [InlineData("172.32.0.1")]
    [InlineData("100.128.0.1")]
    [InlineData("2606:4700:4700::1111")]
    [InlineData("::ffff:8.8.8.8")]
    public void Public_addresses_pass(string address) => Assert.False(AddressRules.IsNonPublic(IPAddress.Parse(address)));

    [Theory]
    [InlineData("api.example.com", 443, 443, true)]
    [InlineData("api.example.com", 80, 80, true)]
    [InlineData("api.example.com", 8443, 443, false)] // another port than the patterns allow
    [InlineData("x.cdn.example.com", 443, 443, true)] // under both wildcards
    [InlineData("cdn.example.com", 443, 443, false)]  // a wildcard covers subdomains only
    [InlineData("evil.com", 443, 443, false)]
    [InlineData("other.example.com", 443, 443, false)] // the manifest does not ask for it
    public void A_host_must_pass_both_the_manifest_and_the_policy(string host, int port, int schemeDefault, bool allowed)
    {
        var manifest = Patterns("api.example.com", "*.cdn.example.com");
        var policy = Patterns("*.example.com", "api.example.com");
        Assert.Equal(allowed, AddressRules.HostAllowed(manifest, policy, host, port, schemeDefault));
    }

    [Fact]
    public void A_manifest_host_with_the_default_https_port_is_shown_under_a_policy_host_without_one()
    {
        // The review's case: the broker allows https://api.example.com with these, so PluginInfo must list it.
        Assert.Equal(["api.example.com:443"], AddressRules.EffectiveAllowList(Patterns("api.example.com:443"), Patterns("api.example.com")));
    }

    [Theory]
    [InlineData("api.example.com:8443", "api.example.com", false)]
    [InlineData("api.example.com", "api.example.com:8443", false)]
    [InlineData("api.example.com:8443", "api.example.com:8443", true)]
    [InlineData("api.example.com", "*.example.com", true)]
    [InlineData("api.example.com:8080", "*.example.com", false)]
    [InlineData("*.example.com", "api.example.com", true)] // the broker allows api.example.com under the manifest's wildcard
    [InlineData("*.example.com", "*.example.com", true)]
    [InlineData("*.example.com", "*.other.com", false)]
    [InlineData("api.example.com", "other.example.com", false)]
    public void The_effective_allow_list_is_what_the_broker_would_allow(string manifestHost, string policyHost, bool shown)
    {
        var list = AddressRules.EffectiveAllowList(Patterns(manifestHost), Patterns(policyHost)).ToList();
        Assert.Equal(shown ? [manifestHost] : [], list);
    }

    private static List<HostPattern> Patterns(params string[] texts) => texts.Select(text =>
    {
        Assert.True(HostPattern.TryParse(text, out var pattern, out var problem), problem);
        return pattern!;
    }).ToList();
}
