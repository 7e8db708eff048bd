using System.Security.Cryptography;

namespace Connectias.Sandbox.Packaging;

/// <summary>Who signed a package, or that it is unsigned and the daemon allows that.</summary>
public sealed record SignerIdentity(bool Signed, string? Fingerprint, SignatureAlgorithm? Algorithm, string? KeyFile)
{
    public static readonly SignerIdentity Unsigned = new(false, null, null, null);
}

/// <summary>
/// SPEC §1: a package verifies if any of its signature files verifies against any trusted, non-revoked
/// key. Every refusal is <c>INVALID_SIGNATURE</c> with the concrete cause.
/// </summary>
public static class SignatureVerifier
{
    public static SignerIdentity Verify(PluginPackage package, TrustStore trustStore, bool allowUnsigned = false)
    {
        var metadata = new Dictionary<string, string> { ["plugin_id"] = package.Manifest.Id };
        if (package.Signatures.Count == 0)
        {
            if (allowUnsigned) return SignerIdentity.Unsigned;
            throw new SandboxException(ErrorReason.InvalidSignature,
                $"package {package.Manifest.Id} is not signed: it has no {PackagePaths.RsaSignatureFile} or {PackagePaths.EcSignatureFile}", metadata);
        }

        var digest = package.ComputeSignedDigest();
        var problems = new List<string>();
        foreach (var signature in package.Signatures)
        {
            if (signature.Value is null)
            {
                problems.Add($"{signature.EntryPath} {signature.Problem}");
                continue;
            }

            var matching = trustStore.Keys.Where(key => key.Algorithm == signature.Algorithm && VerifyDigest(key, signature.Value, digest)).ToList();
            var trusted = matching.FirstOrDefault(key => key.IsUsable);
            if (trusted is not null) return new SignerIdentity(true, trusted.Fingerprint, trusted.Algorithm, trusted.FilePath);

            foreach (var key in matching)
            {
                problems.Add(key.Revoked
                    ? $"{signature.EntryPath} was made by key {key.Fingerprint}, which is revoked in {TrustStore.RevocationFile}"
                    : $"{signature.EntryPath} was made by a refused key: {key.RejectedBecause}");
            }

            if (matching.Count == 0)
            {
                var candidates = trustStore.UsableKeys.Count(key => key.Algorithm == signature.Algorithm);
                problems.Add($"{signature.EntryPath} verifies against none of the {candidates} trusted {signature.Algorithm.ToString().ToUpperInvariant()} key(s) " +
                             "(the package was changed after signing, or its signer is not trusted)");
            }
        }

        throw new SandboxException(ErrorReason.InvalidSignature,
            $"package {package.Manifest.Id} has no valid signature: {string.Join("; ", problems)}", metadata);
    }

    private static bool VerifyDigest(TrustedKey key, byte[] signature, byte[] digest)
    {
        try
        {
            if (key.Algorithm == SignatureAlgorithm.Rsa)
            {
                using var rsa = RSA.Create();
                rsa.ImportSubjectPublicKeyInfo(key.SubjectPublicKeyInfo, out _);
                return rsa.VerifyHash(digest, signature, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
            }

            using var ec = ECDsa.Create();
            ec.ImportSubjectPublicKeyInfo(key.SubjectPublicKeyInfo, out _);
            return ec.VerifyHash(digest, signature, DSASignatureFormat.Rfc3279DerSequence);
        }
        catch (CryptographicException)
        {
            return false; // a signature of the wrong length or encoding simply does not verify
        }
    }
}
