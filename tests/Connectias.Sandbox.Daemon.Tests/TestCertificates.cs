using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Connectias.Sandbox.Daemon.Tests;

/// <summary>
/// A throw-away PKI for the TCP listener's tests, as PEM files in a temporary directory: a CA with a server certificate
/// for 127.0.0.1 and a client certificate, and the daemon's settings for them. EC P-256 keys, quick to make.
/// </summary>
public sealed class TestCertificates : IDisposable
{
    private static readonly Oid ServerAuthentication = new("1.3.6.1.5.5.7.3.1");
    private static readonly Oid ClientAuthentication = new("1.3.6.1.5.5.7.3.2");

    public TestCertificates()
    {
        Directory = System.IO.Directory.CreateTempSubdirectory("connectias-pki-").FullName;
        ClientCaDir = System.IO.Directory.CreateDirectory(Path.Combine(Directory, "client-cas")).FullName;
        Ca = NewCa("CN=Connectias Test CA");
        File.WriteAllText(Path.Combine(ClientCaDir, "ca.pem"), Ca.ExportCertificatePem());
        CaFile = Path.Combine(Directory, "ca.pem");
        File.WriteAllText(CaFile, Ca.ExportCertificatePem());
        (ServerCertificateFile, ServerKeyFile) = Write("server", Issue(Ca, "CN=127.0.0.1", server: true));
        Client = Issue(Ca, "CN=test-client");
        (ClientCertificateFile, ClientKeyFile) = Write("client", Client);
    }

    public string Directory { get; }
    public X509Certificate2 Ca { get; }
    public string CaFile { get; }
    public string ClientCaDir { get; }
    public string ServerCertificateFile { get; }
    public string ServerKeyFile { get; }
    public X509Certificate2 Client { get; }
    public string ClientCertificateFile { get; }
    public string ClientKeyFile { get; }

    /// <summary>The daemon's flags for a TLS listener on <paramref name="port"/> with these files.</summary>
    public string[] DaemonArguments(int port) =>
        ["--tcp", $"127.0.0.1:{port}", "--tls-cert", ServerCertificateFile, "--tls-key", ServerKeyFile, "--tls-client-ca", ClientCaDir];

    /// <summary>A client's TLS settings: <paramref name="certificate"/> (default: the good client's) and this CA for the daemon.</summary>
    public Client.SandboxTls ClientTls(X509Certificate2? certificate = null) => new(certificate ?? Client, [Ca]);

    public static X509Certificate2 NewCa(string subject, DateTimeOffset? notAfter = null)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(subject, key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        return request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-30), notAfter ?? DateTimeOffset.UtcNow.AddDays(30));
    }

    /// <summary>A certificate <paramref name="issuer"/> signs, with its private key; a client's unless <paramref name="server"/>.</summary>
    public static X509Certificate2 Issue(X509Certificate2 issuer, string subject, bool server = false, DateTimeOffset? notBefore = null, DateTimeOffset? notAfter = null)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(subject, key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([server ? ServerAuthentication : ClientAuthentication], false));
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(issuer, true, false));
        if (server)
        {
            var names = new SubjectAlternativeNameBuilder();
            names.AddIpAddress(System.Net.IPAddress.Loopback);
            names.AddDnsName("localhost");
            request.CertificateExtensions.Add(names.Build());
        }

        var serial = RandomNumberGenerator.GetBytes(16);
        serial[0] &= 0x7f;
        using var signed = request.Create(issuer, notBefore ?? DateTimeOffset.UtcNow.AddDays(-1), notAfter ?? DateTimeOffset.UtcNow.AddDays(7), serial);
        return signed.CopyWithPrivateKey(key);
    }

    /// <summary>Writes DIR/NAME.pem and DIR/NAME.key (PKCS#8, mode 0600).</summary>
    public (string Certificate, string Key) Write(string name, X509Certificate2 certificate)
    {
        var certificateFile = Path.Combine(Directory, $"{name}.pem");
        var keyFile = Path.Combine(Directory, $"{name}.key");
        File.WriteAllText(certificateFile, certificate.ExportCertificatePem());
        File.WriteAllText(keyFile, certificate.GetECDsaPrivateKey()!.ExportPkcs8PrivateKeyPem());
        File.SetUnixFileMode(keyFile, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        return (certificateFile, keyFile);
    }

    public void Dispose()
    {
        Ca.Dispose();
        Client.Dispose();
        System.IO.Directory.Delete(Directory, recursive: true);
    }
}
