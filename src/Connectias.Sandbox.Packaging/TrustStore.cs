using System.Security.Cryptography;
using System.Text;

namespace Connectias.Sandbox.Packaging;

/// <summary>A public key found in the trust store. Revoked and too-short keys are kept, never trusted,
/// so that a refusal can say exactly why a package's signer is not accepted.</summary>
public sealed record TrustedKey(
    string Fingerprint,
    SignatureAlgorithm Algorithm,
    int KeySizeBits,
    string FilePath,
    byte[] SubjectPublicKeyInfo,
    bool Revoked,
    string? RejectedBecause)
{
    public bool IsUsable => !Revoked && RejectedBecause is null;
}

/// <summary>
/// The directory of trusted public keys of SPEC §1: one key per file (PEM <c>PUBLIC KEY</c>, PEM
/// <c>RSA PUBLIC KEY</c>, or DER), revoked fingerprints in <c>revoked.txt</c>. Files that are not keys are
/// reported in <see cref="Warnings"/> rather than failing the whole store, so one stray file cannot lock
/// every plugin out.
/// </summary>
public sealed class TrustStore
{
    public const string RevocationFile = "revoked.txt";
    public const int MinRsaBits = 2048;
    private const int MaxKeyFileBytes = 64 * 1024;

    private TrustStore(string directory, IReadOnlyList<TrustedKey> keys, IReadOnlySet<string> revoked, IReadOnlyList<string> warnings)
    {
        Directory = directory;
        Keys = keys;
        RevokedFingerprints = revoked;
        Warnings = warnings;
    }

    public string Directory { get; }
    public IReadOnlyList<TrustedKey> Keys { get; }
    public IReadOnlySet<string> RevokedFingerprints { get; }
    public IReadOnlyList<string> Warnings { get; }
    public IEnumerable<TrustedKey> UsableKeys => Keys.Where(key => key.IsUsable);

    /// <summary>Loads the store; a missing directory is an empty store (with a warning), not an error.</summary>
    public static TrustStore Load(string directory)
    {
        var warnings = new List<string>();
        if (!System.IO.Directory.Exists(directory))
        {
            warnings.Add($"trust store directory '{directory}' does not exist; no key is trusted");
            return new TrustStore(directory, [], new HashSet<string>(), warnings);
        }

        var revoked = ReadRevocations(Path.Combine(directory, RevocationFile), warnings);
        var keys = new List<TrustedKey>();
        foreach (var file in System.IO.Directory.EnumerateFiles(directory).Order(StringComparer.Ordinal))
        {
            var fileName = Path.GetFileName(file);
            if (fileName == RevocationFile || fileName.StartsWith('.') ||
                fileName.EndsWith(".md", StringComparison.OrdinalIgnoreCase)) continue;
            var info = new FileInfo(file);
            // FIFOs, sockets and devices report no length; opening one could block forever.
            if (info.Length == 0)
            {
                warnings.Add($"{fileName}: empty or not a regular file; ignored");
                continue;
            }

            if (info.Length > MaxKeyFileBytes)
            {
                warnings.Add($"{fileName}: {info.Length} bytes is too large to be a public key; ignored");
                continue;
            }

            try
            {
                var key = ParseKey(File.ReadAllBytes(file), file, revoked);
                keys.Add(key);
                if (key.RejectedBecause is not null) warnings.Add($"{fileName}: {key.RejectedBecause}");
            }
            catch (Exception e) when (e is CryptographicException or FormatException or ArgumentException or IOException)
            {
                warnings.Add($"{fileName}: not a usable public key ({e.Message}); ignored");
            }
        }

        return new TrustStore(directory, keys, revoked, warnings);
    }

    /// <summary>The lower-case hex SHA-256 of a SubjectPublicKeyInfo DER (SPEC §1).</summary>
    public static string Fingerprint(ReadOnlySpan<byte> subjectPublicKeyInfo) =>
        Convert.ToHexStringLower(SHA256.HashData(subjectPublicKeyInfo));

    /// <summary>Parses one public key file's bytes; throws when they are no public key at all.</summary>
    public static TrustedKey ParseKey(byte[] fileBytes, string filePath, IReadOnlySet<string> revoked)
    {
        var spki = ToSubjectPublicKeyInfo(fileBytes);
        var fingerprint = Fingerprint(spki);
        var isRevoked = revoked.Contains(fingerprint);
        try
        {
            using var rsa = RSA.Create();
            rsa.ImportSubjectPublicKeyInfo(spki, out _);
            var rejected = rsa.KeySize < MinRsaBits
                ? $"RSA key {fingerprint} has {rsa.KeySize} bits; keys shorter than {MinRsaBits} bits are refused"
                : null;
            return new TrustedKey(fingerprint, SignatureAlgorithm.Rsa, rsa.KeySize, filePath, spki, isRevoked, rejected);
        }
        catch (CryptographicException)
        {
            using var ec = ECDsa.Create();
            ec.ImportSubjectPublicKeyInfo(spki, out _);
            var curve = ec.ExportParameters(false).Curve;
            var rejected = curve.Oid?.Value == ECCurve.NamedCurves.nistP256.Oid.Value
                ? null
                : $"EC key {fingerprint} is on curve {curve.Oid?.FriendlyName ?? curve.Oid?.Value ?? "unknown"}; only P-256 is accepted";
            return new TrustedKey(fingerprint, SignatureAlgorithm.Ec, ec.KeySize, filePath, spki, isRevoked, rejected);
        }
    }

    private static byte[] ToSubjectPublicKeyInfo(byte[] fileBytes)
    {
        var text = Encoding.ASCII.GetString(fileBytes);
        if (text.Contains("-----BEGIN", StringComparison.Ordinal))
        {
            if (!PemEncoding.TryFind(text, out var fields)) throw new FormatException("malformed PEM");
            var label = text[fields.Label];
            var der = Convert.FromBase64String(text[fields.Base64Data]);
            return label switch
            {
                "PUBLIC KEY" => CanonicalSpki(der),
                "RSA PUBLIC KEY" => RsaPkcs1ToSpki(der),
                _ when label.Contains("PRIVATE", StringComparison.Ordinal) =>
                    throw new FormatException($"holds a private key ({label}); a trust store takes public keys only"),
                _ => throw new FormatException($"PEM label '{label}' is not PUBLIC KEY or RSA PUBLIC KEY"),
            };
        }

        try
        {
            return CanonicalSpki(fileBytes);
        }
        catch (CryptographicException)
        {
            return RsaPkcs1ToSpki(fileBytes);
        }
    }

    /// <summary>Re-exports an SPKI so that the fingerprint is over its canonical DER, and proves it is RSA or EC.</summary>
    private static byte[] CanonicalSpki(byte[] der)
    {
        try
        {
            using var rsa = RSA.Create();
            rsa.ImportSubjectPublicKeyInfo(der, out _);
            return rsa.ExportSubjectPublicKeyInfo();
        }
        catch (CryptographicException)
        {
            using var ec = ECDsa.Create();
            ec.ImportSubjectPublicKeyInfo(der, out _);
            return ec.ExportSubjectPublicKeyInfo();
        }
    }

    private static byte[] RsaPkcs1ToSpki(byte[] der)
    {
        using var rsa = RSA.Create();
        rsa.ImportRSAPublicKey(der, out _);
        return rsa.ExportSubjectPublicKeyInfo();
    }

    private static HashSet<string> ReadRevocations(string path, List<string> warnings)
    {
        var revoked = new HashSet<string>(StringComparer.Ordinal);
        if (!File.Exists(path)) return revoked;
        var lineNumber = 0;
        foreach (var rawLine in File.ReadLines(path))
        {
            lineNumber++;
            var line = rawLine.Split('#')[0].Trim().ToLowerInvariant();
            if (line.Length == 0) continue;
            if (line.Length == 64 && line.All(char.IsAsciiHexDigitLower)) revoked.Add(line);
            else warnings.Add($"{RevocationFile} line {lineNumber}: '{line}' is not a SHA-256 fingerprint (64 hex digits); ignored");
        }

        return revoked;
    }
}
