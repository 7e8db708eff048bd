using System.Security.Cryptography;
using System.Text;
using static Connectias.Sandbox.Packaging.Tests.TestPackages;

namespace Connectias.Sandbox.Packaging.Tests;

public class SignatureTests : IDisposable
{
    private readonly TrustDirectory _trust = new();
    private readonly SigningKey _ec = SigningKey.Generate(SignatureAlgorithm.Ec);
    private readonly SigningKey _rsa = SigningKey.Generate(SignatureAlgorithm.Rsa, 2048);

    public SignatureTests()
    {
        _trust.Trust(_ec, "ec.pub");
        _trust.Trust(_rsa, "rsa.pub");
    }

    public void Dispose()
    {
        _trust.Dispose();
        _ec.Dispose();
        _rsa.Dispose();
    }

    private SignerIdentity Verify(byte[] package, bool allowUnsigned = false) =>
        SignatureVerifier.Verify(new PackageReader().Read(package), _trust.Load(), allowUnsigned);

    private SandboxException Refused(byte[] package)
    {
        var error = Assert.Throws<SandboxException>(() => Verify(package));
        Assert.Equal(ErrorReason.InvalidSignature, error.Reason);
        return error;
    }

    /// <summary>Rewrites a signed package with one entry changed, keeping the signature file as it was.</summary>
    private static byte[] Rewrite(byte[] signed, Func<IEnumerable<PackageEntry>, IEnumerable<PackageEntry>> change) =>
        PackageWriter.Write(change(new PackageReader().Read(signed).Entries));

    [Theory]
    [InlineData(SignatureAlgorithm.Ec)]
    [InlineData(SignatureAlgorithm.Rsa)]
    public void A_package_signed_by_a_trusted_key_verifies_with_its_fingerprint(SignatureAlgorithm algorithm)
    {
        var key = algorithm == SignatureAlgorithm.Ec ? _ec : _rsa;
        var signer = Verify(PackageSigner.Sign(Valid(), key));
        Assert.True(signer.Signed);
        Assert.Equal(key.Fingerprint, signer.Fingerprint);
        Assert.Equal(algorithm, signer.Algorithm);
    }

    [Fact]
    public void A_package_may_carry_both_signatures() =>
        Assert.True(Verify(PackageSigner.Sign(PackageSigner.Sign(Valid(), _ec), _rsa)).Signed);

    [Theory]
    [InlineData("plugin.json")]
    [InlineData("plugin.wasm")]
    [InlineData("README.md")]
    [InlineData("assets/data.txt")]
    public void Changing_one_byte_of_any_entry_breaks_the_signature(string path)
    {
        var signed = PackageSigner.Sign(Valid(), _ec);
        var tampered = Rewrite(signed, entries => entries.Select(entry =>
        {
            if (entry.Path != path) return entry;
            var content = (byte[])entry.Content.Clone();
            var at = path == "plugin.json" ? Encoding.UTF8.GetString(content).IndexOf("Hello", StringComparison.Ordinal) : content.Length - 1;
            content[at] ^= 0x01; // 'H' -> 'I' keeps the manifest valid JSON
            return new PackageEntry(entry.Path, content);
        }));
        Assert.Contains("changed after signing", Refused(tampered).Message);
    }

    [Fact]
    public void Adding_an_entry_breaks_the_signature() =>
        Refused(Rewrite(PackageSigner.Sign(Valid(), _ec), entries => entries.Append(new PackageEntry("extra.txt", "added"u8.ToArray()))));

    [Fact]
    public void Removing_an_entry_breaks_the_signature() =>
        Refused(Rewrite(PackageSigner.Sign(Valid(), _ec), entries => entries.Where(entry => entry.Path != "README.md")));

    [Fact]
    public void Renaming_an_entry_breaks_the_signature() =>
        Refused(Rewrite(PackageSigner.Sign(Valid(), _ec), entries => entries.Select(entry =>
            entry.Path == "assets/data.txt" ? new PackageEntry("assets/date.txt", entry.Content) : entry)));

    [Fact]
    public void An_empty_file_added_breaks_the_signature() =>
        Refused(Rewrite(PackageSigner.Sign(Valid(), _ec), entries => entries.Append(new PackageEntry("empty", []))));

    [Fact]
    public void A_signature_by_an_untrusted_key_is_refused()
    {
        using var stranger = SigningKey.Generate(SignatureAlgorithm.Ec);
        Assert.Contains("not trusted", Refused(PackageSigner.Sign(Valid(), stranger)).Message);
    }

    [Fact]
    public void A_signature_by_a_revoked_key_is_refused_naming_the_key()
    {
        _trust.Revoke(_ec.Fingerprint.ToUpperInvariant()); // revoked.txt is case-insensitive
        var error = Refused(PackageSigner.Sign(Valid(), _ec));
        Assert.Contains($"key {_ec.Fingerprint}, which is revoked", error.Message);
    }

    [Fact]
    public void A_revoked_key_does_not_spoil_another_valid_signature()
    {
        _trust.Revoke(_ec.Fingerprint);
        Assert.Equal(_rsa.Fingerprint, Verify(PackageSigner.Sign(PackageSigner.Sign(Valid(), _ec), _rsa)).Fingerprint);
    }

    [Fact]
    public void A_1024_bit_RSA_key_is_refused_even_when_trusted()
    {
        using var weak = RSA.Create(1024);
        _trust.Add("weak.pub", weak.ExportSubjectPublicKeyInfoPem());
        var package = new PackageReader().Read(Valid());
        var signature = weak.SignHash(package.ComputeSignedDigest(), HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        var signed = ValidWith(new RawEntry(PackagePaths.RsaSignatureFile, Encoding.ASCII.GetBytes(Convert.ToBase64String(signature))));

        var error = Refused(signed);
        Assert.Contains("1024 bits; keys shorter than 2048 bits are refused", error.Message);
        Assert.Contains(_trust.Load().Warnings, warning => warning.Contains("1024 bits"));
    }

    [Fact]
    public void Our_signer_refuses_to_use_a_1024_bit_key()
    {
        using var weak = RSA.Create(1024);
        Assert.Throws<CryptographicException>(() => SigningKey.FromPem(weak.ExportPkcs8PrivateKeyPem()));
    }

    [Theory]
    [InlineData("!!!! not base64 !!!!", "not valid base64")]
    [InlineData("", "is empty")]
    [InlineData("AAAA", "verifies against none")]
    public void A_garbage_signature_is_refused(string content, string problem)
    {
        var package = ValidWith(new RawEntry(PackagePaths.EcSignatureFile, Encoding.ASCII.GetBytes(content)));
        Assert.Contains(problem, Refused(package).Message);
    }

    [Fact]
    public void An_EC_signature_in_the_RSA_file_is_refused()
    {
        var ecSigned = new PackageReader().Read(PackageSigner.Sign(Valid(), _ec));
        var value = ecSigned.Signatures.Single().Value!;
        Refused(ValidWith(new RawEntry(PackagePaths.RsaSignatureFile, Encoding.ASCII.GetBytes(Convert.ToBase64String(value)))));
    }

    [Fact]
    public void A_signature_copied_from_another_package_is_refused()
    {
        var other = PackageSigner.Sign(WithManifest("""{"id":"com.example.other","name":"Other","version":"1.0.0"}"""), _ec);
        var stolen = new PackageReader().Read(other).Signatures.Single().Value!;
        Refused(ValidWith(new RawEntry(PackagePaths.EcSignatureFile, Encoding.ASCII.GetBytes(Convert.ToBase64String(stolen)))));
    }

    [Fact]
    public void An_oversized_signature_file_is_refused_before_inflating() =>
        Assert.Equal(ErrorReason.InvalidSignature,
            Refusal(ValidWith(new RawEntry(PackagePaths.EcSignatureFile, new byte[20_000]))).Reason);

    [Fact]
    public void An_unsigned_package_is_refused_unless_allowed()
    {
        Assert.Contains("not signed", Refused(Valid()).Message);
        Assert.False(Verify(Valid(), allowUnsigned: true).Signed);
    }

    [Fact]
    public void Allowing_unsigned_packages_does_not_accept_a_bad_signature()
    {
        var package = ValidWith(new RawEntry(PackagePaths.EcSignatureFile, "AAAA"u8.ToArray()));
        Assert.Throws<SandboxException>(() => Verify(package, allowUnsigned: true));
    }

    [Fact]
    public void An_empty_trust_store_trusts_nothing()
    {
        using var empty = new TrustDirectory();
        var error = Assert.Throws<SandboxException>(() =>
            SignatureVerifier.Verify(new PackageReader().Read(PackageSigner.Sign(Valid(), _ec)), empty.Load()));
        Assert.Contains("none of the 0 trusted", error.Message);
    }

    [Fact]
    public void Unknown_signature_kinds_are_ignored_but_listed()
    {
        var package = new PackageReader().Read(ValidWith(new RawEntry("META-INF/SIGNATURE.DSA", "AAAA"u8.ToArray())));
        Assert.Equal(["META-INF/SIGNATURE.DSA"], package.UnknownSignatureFiles);
        Assert.Empty(package.Signatures);
    }

    [Fact]
    public void Signing_does_not_change_what_is_signed()
    {
        var unsigned = new PackageReader().Read(Valid());
        var signed = new PackageReader().Read(PackageSigner.Sign(Valid(), _rsa));
        Assert.Equal(unsigned.ComputeSignedDigest(), signed.ComputeSignedDigest());
    }

    [Fact]
    public void Trust_store_files_that_are_not_keys_are_warnings_not_failures()
    {
        _trust.Add("notes.txt", "hello");
        _trust.Add("private.pem", _ec.ExportPrivateKeyPem());
        _trust.Add("empty.pub", "");
        _trust.Add(TrustStore.RevocationFile, "not-a-fingerprint\n");
        var store = _trust.Load();
        Assert.Equal(2, store.UsableKeys.Count());
        Assert.Contains(store.Warnings, w => w.StartsWith("notes.txt", StringComparison.Ordinal));
        Assert.Contains(store.Warnings, w => w.Contains("private key", StringComparison.Ordinal));
        Assert.Contains(store.Warnings, w => w.StartsWith("empty.pub", StringComparison.Ordinal));
        Assert.Contains(store.Warnings, w => w.Contains("revoked.txt line 1", StringComparison.Ordinal));
    }

    [Fact]
    public void A_missing_trust_directory_is_an_empty_store_with_a_warning()
    {
        var store = TrustStore.Load("/nonexistent/trust");
        Assert.Empty(store.Keys);
        Assert.Single(store.Warnings);
    }

    [Fact]
    public void An_EC_key_on_another_curve_is_refused()
    {
        using var p384 = ECDsa.Create(ECCurve.NamedCurves.nistP384);
        _trust.Add("p384.pub", p384.ExportSubjectPublicKeyInfoPem());
        var key = _trust.Load().Keys.Single(k => k.FilePath.EndsWith("p384.pub", StringComparison.Ordinal));
        Assert.False(key.IsUsable);
        Assert.Contains("only P-256", key.RejectedBecause);
    }
}
