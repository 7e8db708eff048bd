using System.Net;
using System.Net.Sockets;
using Connectias.Sandbox.Packaging;

namespace Connectias.Sandbox.Daemon.Network;

/// <summary>
/// The broker's rules about where a request may go (SPEC §3), in one place: the host and port must be allowed
/// by both the manifest and the policy, and every address must be public unless the policy allows that host's
/// private address. <see cref="EffectiveAllowList"/> shows operators the same decision the broker makes.
/// </summary>
internal static class AddressRules
{
    public static int DefaultPort(string? scheme) => scheme == "https" ? 443 : 80;

    /// <summary>Whether a request to <paramref name="host"/>:<paramref name="port"/> passes both allow-lists.</summary>
    public static bool HostAllowed(IReadOnlyList<HostPattern> manifestHosts, IReadOnlyList<HostPattern> policyHosts, string host, int port, int schemeDefaultPort) =>
        manifestHosts.Any(p => p.Matches(host, port, schemeDefaultPort)) && policyHosts.Any(p => p.Matches(host, port, schemeDefaultPort));

    /// <summary>
    /// The manifest's entries under which the broker would allow at least one request: each is probed with
    /// <see cref="HostAllowed"/> on http's and https's default ports, and for a wildcard with a name under it
    /// and with every host the policy names.
    /// </summary>
    public static IEnumerable<string> EffectiveAllowList(IReadOnlyList<HostPattern> manifestHosts, IReadOnlyList<HostPattern> policyHosts)
    {
        foreach (var entry in manifestHosts)
        {
            var candidates = entry.IsWildcard
                ? policyHosts.Select(p => p.IsWildcard ? "probe." + p.Host : p.Host).Append("probe." + entry.Host)
                : [entry.Host];
            var allowed = candidates.Any(host => new[] { 80, 443 }.Any(schemeDefault =>
                HostAllowed(manifestHosts.Where(m => m == entry).ToList(), policyHosts, host, entry.Port ?? schemeDefault, schemeDefault)));
            if (allowed) yield return entry.Text;
        }
    }

    /// <summary>Addresses a plugin may not reach unless the policy allows the host explicitly.</summary>
    public static bool IsNonPublic(IPAddress address)
    {
        if (address.IsIPv4MappedToIPv6) address = address.MapToIPv4();
        if (IPAddress.IsLoopback(address)) return true;
        var b = address.GetAddressBytes();
        if (address.AddressFamily == AddressFamily.InterNetwork)
        {
            return b[0] is 0 or 10 or 127 || b[0] >= 224 ||            // this network, private, loopback, multicast and reserved
                   (b[0] == 100 && (b[1] & 0xC0) == 64) ||               // carrier-grade NAT
                   (b[0] == 169 && b[1] == 254) ||                       // link-local, including 169.254.169.254 metadata
                   (b[0] == 172 && (b[1] & 0xF0) == 16) ||
                   (b[0] == 192 && b[1] == 168) ||
                   (b[0] == 192 && b[1] == 0 && b[2] == 0);             // IETF protocol assignments
        }

        return address.Equals(IPAddress.IPv6Any) || address.IsIPv6LinkLocal || address.IsIPv6SiteLocal || address.IsIPv6Multicast ||
               (b[0] & 0xFE) == 0xFC;                                    // unique local, including fd00:ec2::254 metadata
    }
}
