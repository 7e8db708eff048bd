using System.Text.RegularExpressions;

namespace Connectias.Sandbox.Packaging;

/// <summary>A SemVer 2.0.0 version with the standard's precedence rules (build metadata is ignored).</summary>
public sealed partial class SemanticVersion : IComparable<SemanticVersion>
{
    // The regular expression published with the SemVer 2.0.0 specification.
    [GeneratedRegex(@"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$", RegexOptions.CultureInvariant)]
    private static partial Regex Pattern();

    private SemanticVersion(ulong major, ulong minor, ulong patch, string[] prerelease, string text)
    {
        Major = major;
        Minor = minor;
        Patch = patch;
        Prerelease = prerelease;
        Text = text;
    }

    public ulong Major { get; }
    public ulong Minor { get; }
    public ulong Patch { get; }
    public IReadOnlyList<string> Prerelease { get; }
    public string Text { get; }

    public static bool TryParse(string text, out SemanticVersion? version)
    {
        version = null;
        var match = Pattern().Match(text);
        if (!match.Success ||
            !ulong.TryParse(match.Groups[1].Value, out var major) ||
            !ulong.TryParse(match.Groups[2].Value, out var minor) ||
            !ulong.TryParse(match.Groups[3].Value, out var patch))
        {
            return false;
        }

        var prerelease = match.Groups[4].Success ? match.Groups[4].Value.Split('.') : [];
        version = new SemanticVersion(major, minor, patch, prerelease, text);
        return true;
    }

    public static SemanticVersion Parse(string text) =>
        TryParse(text, out var version) ? version! : throw new FormatException($"'{text}' is not a SemVer 2.0 version");

    public int CompareTo(SemanticVersion? other)
    {
        if (other is null) return 1;
        var byCore = (Major, Minor, Patch).CompareTo((other.Major, other.Minor, other.Patch));
        if (byCore != 0) return byCore;
        // A version without pre-release identifiers has higher precedence than one with them.
        if (Prerelease.Count == 0 || other.Prerelease.Count == 0)
            return (Prerelease.Count == 0, other.Prerelease.Count == 0) switch { (true, true) => 0, (true, false) => 1, _ => -1 };
        for (var i = 0; i < Math.Min(Prerelease.Count, other.Prerelease.Count); i++)
        {
            var byIdentifier = CompareIdentifier(Prerelease[i], other.Prerelease[i]);
            if (byIdentifier != 0) return byIdentifier;
        }

        return Prerelease.Count.CompareTo(other.Prerelease.Count);
    }

    private static int CompareIdentifier(string left, string right)
    {
        var leftNumeric = ulong.TryParse(left, out var leftNumber) && left.All(char.IsAsciiDigit);
        var rightNumeric = ulong.TryParse(right, out var rightNumber) && right.All(char.IsAsciiDigit);
        return (leftNumeric, rightNumeric) switch
        {
            (true, true) => leftNumber.CompareTo(rightNumber),
            (true, false) => -1, // numeric identifiers have lower precedence than alphanumeric ones
            (false, true) => 1,
            _ => string.CompareOrdinal(left, right),
        };
    }

    public override string ToString() => Text;
}
