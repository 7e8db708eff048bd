using System.Net;
using System.Net.Sockets;

namespace Connectias.Sandbox.Packaging;

/// <summary>
/// One entry of an <c>allowed_hosts</c> list: <c>api.example.com</c>, <c>*.example.com</c> (any
/// subdomain, not the bare domain), an IP literal (<c>127.0.0.1</c>, <c>[::1]</c>), each with an
/// optional <c>:port</c>. Without a port only the URL scheme's default port matches, so allowing
/// <c>api.example.com</c> does not open every service on that host.
/// </summary>
public sealed class HostPattern
{
    private HostPattern(string host, bool wildcard, int? port, string text)
    {
        Host = host;
        IsWildcard = wildcard;
        Port = port;
        Text = text;
    }

    /// <summary>The host in lower case; for a wildcard the domain after <c>*.</c>; IPv6 without brackets.</summary>
    public string Host { get; }
    public bool IsWildcard { get; }
    public int? Port { get; }
    public string Text { get; }

    public static bool TryParse(string text, out HostPattern? pattern, out string? problem)
    {
        pattern = null;
        problem = null;
        if (string.IsNullOrWhiteSpace(text) || text.Length > 260)
        {
            problem = "must be a host name of at most 253 characters with an optional :port";
            return false;
        }

        var hostPart = text.ToLowerInvariant();
        int? port = null;
        if (hostPart.StartsWith('['))
        {
            var close = hostPart.IndexOf(']');
            if (close < 0)
            {
                problem = "has an unclosed '[' around an IPv6 address";
                return false;
            }

            var rest = hostPart[(close + 1)..];
            hostPart = hostPart[1..close];
            if (!IPAddress.TryParse(hostPart, out var v6) || v6.AddressFamily != AddressFamily.InterNetworkV6)
            {
                problem = "has brackets around something that is not an IPv6 address";
                return false;
            }

            if (rest.Length > 0 && !TryParsePort(rest, out port, out problem)) return false;
            pattern = new HostPattern(hostPart, false, port, text);
            return true;
        }

        var colon = hostPart.LastIndexOf(':');
        if (colon >= 0)
        {
            if (hostPart.IndexOf(':') != colon)
            {
                problem = "looks like an IPv6 address; write it in brackets, e.g. [::1]:8080";
                return false;
            }

            if (!TryParsePort(hostPart[colon..], out port, out problem)) return false;
            hostPart = hostPart[..colon];
        }

        var wildcard = hostPart.StartsWith("*.", StringComparison.Ordinal);
        if (wildcard) hostPart = hostPart[2..];
        if (IPAddress.TryParse(hostPart, out _) && hostPart.Count(c => c == '.') == 3)
        {
            if (wildcard)
            {
                problem = "puts a wildcard in front of an IP address";
                return false;
            }

            pattern = new HostPattern(hostPart, false, port, text);
            return true;
        }

        if (!IsDnsName(hostPart) || (wildcard && !hostPart.Contains('.')))
        {
            problem = wildcard
                ? "must be '*.' followed by a domain of at least two labels"
                : "is not a valid host name (letters, digits, '-' and '.'; '*' only as a leading '*.')";
            return false;
        }

        pattern = new HostPattern(hostPart, wildcard, port, text);
        return true;
    }

    /// <summary>Whether a URL's host and port fall under this pattern.</summary>
    public bool Matches(string host, int port, int schemeDefaultPort)
    {
        var wantedPort = Port ?? schemeDefaultPort;
        if (port != wantedPort) return false;
        host = host.ToLowerInvariant().Trim('[', ']');
        return IsWildcard
            ? host.EndsWith("." + Host, StringComparison.Ordinal)
            : string.Equals(host, Host, StringComparison.Ordinal);
    }

    public override string ToString() => Text;

    private static bool TryParsePort(string colonAndPort, out int? port, out string? problem)
    {
        port = null;
        problem = null;
        if (colonAndPort.Length < 2 || colonAndPort[0] != ':' ||
            !colonAndPort[1..].All(char.IsAsciiDigit) ||
            !int.TryParse(colonAndPort[1..], out var value) || value is < 1 or > 65535)
        {
            problem = "has a port that is not a number from 1 to 65535";
            return false;
        }

        port = value;
        return true;
    }

    private static bool IsDnsName(string host)
    {
        if (host.Length is 0 or > 253) return false;
        foreach (var label in host.Split('.'))
        {
            if (label.Length is 0 or > 63 || label[0] == '-' || label[^1] == '-') return false;
            if (!label.All(c => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c == '-')) return false;
        }

        return true;
    }
}
