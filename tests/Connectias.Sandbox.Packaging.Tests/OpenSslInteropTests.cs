using System.Diagnostics;
using System.IO.Compression;
using System.Security.Cryptography;
using System.Text;

namespace Connectias.Sandbox.Packaging.Tests;

/// <summary>
/// Proves external tools interoperate: the openssl command-line tool makes the keys and signs the
/// canonical bytes (built here by hand, straight from SPEC §1, not by our code), and our verifier
/// accepts the result; and openssl accepts our signatures.
/// </summary>
public sealed class OpenSslInteropTests : IDisposable
{
    private readonly string _work = Directory.CreateTempSubdirectory("connectias-openssl-").FullName;

    public void Dispose() => Directory.Delete(_work, recursive: true);

    // Deliberately unsorted, with a backslash name and a "./" prefix, to exercise normalisation and ordering.
    private static readonly (string ZipName, string CanonicalName, byte[] Content)[] Files =
    [
        ("plugin.wasm", "plugin.wasm", TestPackages.EmptyModule),
        ("./plugin.json", "plugin.json", Encoding.UTF8.GetBytes("""{"id":"com.example.interop","name":"Interop","version":"0.1.0"}""")),
        ("assets\\z.txt", "assets/z.txt", "zzz"u8.ToArray()),
        ("Assets2/a.txt", "Assets2/a.txt", "upper case sorts first"u8.ToArray()),
        ("README.md", "README.md", "# readme\n"u8.ToArray()),
    ];

    private static byte[] CanonicalBytes()
    {
        using var bytes = new MemoryStream();
        foreach (var file in Files.OrderBy(f => f.CanonicalName, StringComparer.Ordinal)) // ASCII names: ordinal = UTF-8 byte order
        {
            bytes.Write(Encoding.UTF8.GetBytes($"{file.CanonicalName}|{file.Content.Length}|"));
            bytes.Write(file.Content);
        }

        return bytes.ToArray();
    }

    private string OpenSsl(params string[] args)
    {
        var start = new ProcessStartInfo("openssl") { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = _work };
        foreach (var arg in args) start.ArgumentList.Add(arg);
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEnd();
        var stderr = process.StandardError.ReadToEnd();
        process.WaitForExit();
        Assert.True(process.ExitCode == 0, $"openssl {string.Join(' ', args)} failed: {stderr}");
        return stdout;
    }

    private byte[] PackageWithSignature(string signatureFile, string base64)
    {
        using var output = new MemoryStream();
        using (var archive = new ZipArchive(output, ZipArchiveMode.Create, leaveOpen: true))
        {
            foreach (var file in Files)
            {
                using var stream = archive.CreateEntry(file.ZipName).Open();
                stream.Write(file.Content);
            }

            using var signature = archive.CreateEntry(signatureFile).Open();
            signature.Write(Encoding.ASCII.GetBytes(base64));
        }

        return output.ToArray();
    }

    private string SignWithOpenSsl(string keyFile)
    {
        File.WriteAllBytes(Path.Combine(_work, "canonical.bin"), CanonicalBytes());
        OpenSsl("dgst", "-sha256", "-sign", keyFile, "-out", "signature.bin", "canonical.bin");
        // Line-wrapped base64, as `openssl base64` writes it by default.
        return OpenSsl("base64", "-in", "signature.bin");
    }

    private string OpenSslFingerprint(string publicKeyFile)
    {
        OpenSsl("pkey", "-pubin", "-in", publicKeyFile, "-outform", "DER", "-out", "spki.der");
        return Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(Path.Combine(_work, "spki.der"))));
    }

    [Fact]
    public void An_RSA_signature_made_by_openssl_verifies()
    {
        OpenSsl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", "rsa.key");
        OpenSsl("pkey", "-in", "rsa.key", "-pubout", "-out", "rsa.pub");
        using var trust = new TrustDirectory();
        // The trust store also takes the PKCS#1 "RSA PUBLIC KEY" form openssl can write.
        OpenSsl("rsa", "-pubin", "-in", "rsa.pub", "-RSAPublicKey_out", "-out", Path.Combine(trust.Path, "rsa-pkcs1.pem"));

        var package = new PackageReader().Read(PackageWithSignature(PackagePaths.RsaSignatureFile, SignWithOpenSsl("rsa.key")));
        Assert.Equal(CanonicalBytes(), SignedBytesOf(package));
        var signer = SignatureVerifier.Verify(package, trust.Load());
        Assert.Equal(OpenSslFingerprint("rsa.pub"), signer.Fingerprint);
    }

    [Fact]
    public void An_EC_signature_made_by_openssl_verifies()
    {
        OpenSsl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "ec.key");
        OpenSsl("pkey", "-in", "ec.key", "-pubout", "-out", "ec.pub");
        using var trust = new TrustDirectory();
        // ... and DER files.
        OpenSsl("pkey", "-pubin", "-in", "ec.pub", "-outform", "DER", "-out", Path.Combine(trust.Path, "ec.der"));

        var package = new PackageReader().Read(PackageWithSignature(PackagePaths.EcSignatureFile, SignWithOpenSsl("ec.key")));
        var signer = SignatureVerifier.Verify(package, trust.Load());
        Assert.Equal(OpenSslFingerprint("ec.pub"), signer.Fingerprint);
    }

    [Fact]
    public void An_openssl_signature_over_different_bytes_is_refused()
    {
        OpenSsl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "ec.key");
        OpenSsl("pkey", "-in", "ec.key", "-pubout", "-out", "ec.pub");
        using var trust = new TrustDirectory();
        File.Copy(Path.Combine(_work, "ec.pub"), Path.Combine(trust.Path, "ec.pub"));
        File.WriteAllBytes(Path.Combine(_work, "other.bin"), "not the canonical bytes"u8.ToArray());
        OpenSsl("dgst", "-sha256", "-sign", "ec.key", "-out", "signature.bin", "other.bin");
        var base64 = OpenSsl("base64", "-A", "-in", "signature.bin");

        var package = new PackageReader().Read(PackageWithSignature(PackagePaths.EcSignatureFile, base64));
        Assert.Equal(ErrorReason.InvalidSignature, Assert.Throws<SandboxException>(() => SignatureVerifier.Verify(package, trust.Load())).Reason);
    }

    [Theory]
    [InlineData(SignatureAlgorithm.Rsa)]
    [InlineData(SignatureAlgorithm.Ec)]
    public void Openssl_verifies_our_signatures(SignatureAlgorithm algorithm)
    {
        using var key = SigningKey.Generate(algorithm, 2048);
        File.WriteAllText(Path.Combine(_work, "ours.pub"), key.ExportPublicKeyPem());
        var package = new PackageReader().Read(PackageSigner.Sign(PackageWithSignature("META-INF/unrelated.txt", "x"), key));
        File.WriteAllBytes(Path.Combine(_work, "signed.bin"), SignedBytesOf(package));
        File.WriteAllBytes(Path.Combine(_work, "ours.sig"), package.Signatures.Single().Value!);
        Assert.Contains("Verified OK", OpenSsl("dgst", "-sha256", "-verify", "ours.pub", "-signature", "ours.sig", "signed.bin"));
    }

    private static byte[] SignedBytesOf(PluginPackage package)
    {
        using var stream = new MemoryStream();
        package.WriteSignedBytes(stream);
        return stream.ToArray();
    }
}
