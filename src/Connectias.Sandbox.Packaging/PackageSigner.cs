using System.Security.Cryptography;
using System.Text;

namespace Connectias.Sandbox.Packaging;

/// <summary>A private signing key: RSA (at least 2048 bits) or EC P-256.</summary>
public sealed class SigningKey : IDisposable
{
    private readonly AsymmetricAlgorithm _key;

    private SigningKey(AsymmetricAlgorithm key, SignatureAlgorithm algorithm)
    {
        _key = key;
        Algorithm = algorithm;
    }

    public SignatureAlgorithm Algorithm { get; }

    public string Fingerprint => TrustStore.Fingerprint(_key.ExportSubjectPublicKeyInfo());

    public static SigningKey Generate(SignatureAlgorithm algorithm, int rsaBits = 3072)
    {
        if (algorithm == SignatureAlgorithm.Rsa && rsaBits < TrustStore.MinRsaBits)
            throw new ArgumentOutOfRangeException(nameof(rsaBits), $"RSA keys need at least {TrustStore.MinRsaBits} bits");
        return algorithm == SignatureAlgorithm.Rsa
            ? new SigningKey(RSA.Create(rsaBits), algorithm)
            : new SigningKey(ECDsa.Create(ECCurve.NamedCurves.nistP256), algorithm);
    }

    /// <summary>Reads a PEM private key: PKCS#8 <c>PRIVATE KEY</c>, <c>RSA PRIVATE KEY</c> or <c>EC PRIVATE KEY</c>.</summary>
    public static SigningKey FromPem(string pem)
    {
        if (!PemEncoding.TryFind(pem, out var fields))
            throw new CryptographicException("no PEM block found; expected PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY");
        var label = pem[fields.Label];
        var der = Convert.FromBase64String(pem[fields.Base64Data]);
        var key = label switch
        {
            "RSA PRIVATE KEY" => ImportRsa(rsa => rsa.ImportRSAPrivateKey(der, out _)),
            "EC PRIVATE KEY" => ImportEc(ec => ec.ImportECPrivateKey(der, out _)),
            "PRIVATE KEY" => TryImportPkcs8Rsa(der) ?? ImportEc(ec => ec.ImportPkcs8PrivateKey(der, out _)),
            "ENCRYPTED PRIVATE KEY" => throw new CryptographicException("the key is encrypted; decrypt it first (openssl pkey -in KEY -out PLAIN)"),
            _ => throw new CryptographicException($"PEM label '{label}' is not a private key"),
        };
        return key;
    }

    private static SigningKey? TryImportPkcs8Rsa(byte[] der)
    {
        try
        {
            return ImportRsa(rsa => rsa.ImportPkcs8PrivateKey(der, out _));
        }
        catch (CryptographicException e) when (!e.Message.Contains("bits", StringComparison.Ordinal))
        {
            return null; // not an RSA key; the caller tries EC
        }
    }

    private static SigningKey ImportRsa(Action<RSA> import)
    {
        var rsa = RSA.Create();
        import(rsa);
        if (rsa.KeySize >= TrustStore.MinRsaBits) return new SigningKey(rsa, SignatureAlgorithm.Rsa);
        var bits = rsa.KeySize;
        rsa.Dispose();
        throw new CryptographicException($"RSA key has {bits} bits; at least {TrustStore.MinRsaBits} are required");
    }

    private static SigningKey ImportEc(Action<ECDsa> import)
    {
        var ec = ECDsa.Create();
        import(ec);
        if (ec.ExportParameters(false).Curve.Oid?.Value == ECCurve.NamedCurves.nistP256.Oid.Value) return new SigningKey(ec, SignatureAlgorithm.Ec);
        ec.Dispose();
        throw new CryptographicException("EC keys must be on curve P-256");
    }

    public string ExportPrivateKeyPem() => _key.ExportPkcs8PrivateKeyPem();

    public string ExportPublicKeyPem() => _key.ExportSubjectPublicKeyInfoPem();

    /// <summary>Signs a SHA-256 digest: PKCS#1 v1.5 for RSA, DER-encoded ECDSA for EC.</summary>
    public byte[] SignDigest(byte[] sha256Digest) => _key switch
    {
        RSA rsa => rsa.SignHash(sha256Digest, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1),
        ECDsa ec => ec.SignHash(sha256Digest, DSASignatureFormat.Rfc3279DerSequence),
        _ => throw new InvalidOperationException("unsupported key"),
    };

    public void Dispose() => _key.Dispose();
}

public static class PackageSigner
{
    /// <summary>
    /// Adds (or replaces) the signature file for this key's algorithm. The package is read with every
    /// hygiene rule first, so nothing unacceptable gets a signature.
    /// </summary>
    public static byte[] Sign(ReadOnlyMemory<byte> packageBytes, SigningKey key, PackageReader? reader = null)
    {
        var package = (reader ?? new PackageReader()).Read(packageBytes);
        var signatureFile = key.Algorithm == SignatureAlgorithm.Rsa ? PackagePaths.RsaSignatureFile : PackagePaths.EcSignatureFile;
        var signature = Convert.ToBase64String(key.SignDigest(package.ComputeSignedDigest()));
        var entries = package.Entries.Where(entry => entry.Path != signatureFile)
            .Append(new PackageEntry(signatureFile, Encoding.ASCII.GetBytes(signature)));
        return PackageWriter.Write(entries);
    }
}
