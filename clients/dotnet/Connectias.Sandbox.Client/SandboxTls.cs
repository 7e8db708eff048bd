using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;

namespace Connectias.Sandbox.Client;

/// <summary>
/// What a client needs for a daemon's TLS TCP listener (mutual TLS): its own certificate with the private key, issued by a
/// CA the daemon trusts (<c>--tls-client-ca</c>), and the CA certificates the daemon's certificate must chain to. Only
/// those CAs are trusted for the daemon, not the system's roots, and the daemon's certificate must name the host dialled.
/// </summary>
public sealed class SandboxTls
{
    public SandboxTls(X509Certificate2 clientCertificate, X509Certificate2Collection serverAuthorities)
    {
        if (!clientCertificate.HasPrivateKey) throw new ArgumentException("the client certificate has no private key", nameof(clientCertificate));
        if (serverAuthorities.Count == 0) throw new ArgumentException("no CA certificate to trust for the daemon", nameof(serverAuthorities));
        ClientCertificate = clientCertificate;
        ServerAuthorities = serverAuthorities;
    }

    public X509Certificate2 ClientCertificate { get; }

    public X509Certificate2Collection ServerAuthorities { get; }

    /// <summary>Reads PEM files: the client's certificate, its unencrypted private key, and the CA certificate(s) that issued the daemon's.</summary>
    public static SandboxTls FromPemFiles(string certificateFile, string keyFile, string serverCaFile)
    {
        var authorities = new X509Certificate2Collection();
        authorities.ImportFromPemFile(serverCaFile);
        if (authorities.Count == 0) throw new System.Security.Cryptography.CryptographicException($"{serverCaFile} holds no PEM certificate");
        return new SandboxTls(X509Certificate2.CreateFromPemFile(certificateFile, keyFile), authorities);
    }

    /// <summary>The TLS settings of a connection: our certificate offered whatever the daemon asks, its own checked against our CAs only.</summary>
    internal SslClientAuthenticationOptions ToSslOptions()
    {
        var policy = new X509ChainPolicy
        {
            TrustMode = X509ChainTrustMode.CustomRootTrust,
            RevocationMode = X509RevocationMode.NoCheck,
            DisableCertificateDownloads = true,
        };
        policy.CustomTrustStore.AddRange(ServerAuthorities);
        var certificate = ClientCertificate;
        return new SslClientAuthenticationOptions
        {
            EnabledSslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
            CertificateChainPolicy = policy, // chain and host name errors then fail the handshake
            LocalCertificateSelectionCallback = (_, _, _, _, _) => certificate,
        };
    }
}
