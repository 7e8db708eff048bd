using System.Text;
using System.Text.RegularExpressions;

namespace Connectias.Sandbox.Packaging;

/// <summary>
/// <c>.connectiasignore</c> in a directory being packed: one pattern a line (<c>#</c> starts a comment).
/// <c>*</c> matches within a path segment and <c>**</c> across segments; a pattern without <c>/</c> matches a
/// file or directory name at any depth, one with <c>/</c> a path from the packed directory; a trailing
/// <c>/</c> matches a directory and everything below it. The ignore file itself is never packed.
/// </summary>
public sealed class PackageIgnore
{
    public const string FileName = ".connectiasignore";

    private readonly List<Regex> _patterns;

    private PackageIgnore(List<Regex> patterns) => _patterns = patterns;

    public static readonly PackageIgnore None = new([]);

    /// <summary>The rules of <paramref name="directory"/>'s ignore file, or <see cref="None"/> without one.</summary>
    public static PackageIgnore For(string directory)
    {
        var path = Path.Combine(directory, FileName);
        return File.Exists(path) ? Parse(File.ReadAllLines(path)) : None;
    }

    public static PackageIgnore Parse(IEnumerable<string> lines) => new(lines
        .Select(line => line.Trim())
        .Where(line => line.Length > 0 && !line.StartsWith('#'))
        .Select(ToRegex)
        .ToList());

    /// <summary>Whether the file at <paramref name="relativePath"/> (with '/' separators) stays out of the package.</summary>
    public bool Ignores(string relativePath) =>
        relativePath == FileName || _patterns.Any(pattern => pattern.IsMatch(relativePath));

    private static Regex ToRegex(string pattern)
    {
        var directoryOnly = pattern.EndsWith('/');
        var body = pattern.Trim('/');
        var anchored = pattern.TrimEnd('/').Contains('/');
        var regex = new StringBuilder(anchored ? "^" : "(^|/)");
        for (var i = 0; i < body.Length; i++)
        {
            if (body[i] == '*' && i + 1 < body.Length && body[i + 1] == '*')
            {
                regex.Append(".*");
                i++;
            }
            else if (body[i] == '*')
            {
                regex.Append("[^/]*");
            }
            else if (body[i] == '?')
            {
                regex.Append("[^/]");
            }
            else
            {
                regex.Append(Regex.Escape(body[i].ToString()));
            }
        }

        // A match names the file itself, or (always for a directory pattern) a directory the file is below.
        regex.Append(directoryOnly ? "/" : "($|/)");
        return new Regex(regex.ToString(), RegexOptions.CultureInvariant | RegexOptions.Compiled);
    }
}
