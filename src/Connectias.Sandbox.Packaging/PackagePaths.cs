namespace Connectias.Sandbox.Packaging;

/// <summary>The path rules of SPEC §1: how entry names are normalised and which names are refused.</summary>
public static class PackagePaths
{
    public const string SignaturePrefix = "META-INF/SIGNATURE.";
    public const string RsaSignatureFile = "META-INF/SIGNATURE.RSA";
    public const string EcSignatureFile = "META-INF/SIGNATURE.EC";

    /// <summary><c>\</c> becomes <c>/</c> and one leading <c>./</c> is stripped, exactly as the signer does.</summary>
    public static string Normalize(string path)
    {
        var normalized = path.Replace('\\', '/');
        return normalized.StartsWith("./", StringComparison.Ordinal) ? normalized[2..] : normalized;
    }

    /// <summary>Signature files are not part of the signed bytes.</summary>
    public static bool IsSignatureFile(string normalizedPath) =>
        normalizedPath.StartsWith(SignaturePrefix, StringComparison.Ordinal) && !normalizedPath.EndsWith('/');

    /// <summary>
    /// Why a raw entry name is unacceptable, or null when it is fine. Nothing is ever extracted, but a
    /// name that could escape a directory on some other reader is refused all the same.
    /// </summary>
    public static string? Problem(string rawPath)
    {
        if (rawPath.Length == 0) return "is empty";
        if (rawPath.Any(char.IsControl)) return "contains control characters";
        var path = Normalize(rawPath);
        if (path.Length == 0) return "is empty after normalisation";
        if (path.StartsWith('/')) return "is an absolute path";
        if (path.Length >= 2 && char.IsAsciiLetter(path[0]) && path[1] == ':') return "starts with a drive letter";
        var segments = path.TrimEnd('/').Split('/');
        foreach (var segment in segments)
        {
            if (segment == "..") return "contains a '..' segment (path traversal)";
            if (segment == ".") return "contains a '.' segment";
            if (segment.Length == 0) return "contains an empty path segment";
        }

        return null;
    }
}
