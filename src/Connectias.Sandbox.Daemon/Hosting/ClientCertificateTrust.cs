using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Connectias.Sandbox.Daemon.Hosting;

/// <summary>
/// The CAs whose certificates may call the daemon over TCP (<c>Sandbox:TlsClientCaDir</c>), and the check of one client
/// certificate against them and nothing else: the system's roots are not trusted here, so a certificate a public CA
/// issued to anyone opens nothing. Revocation is not checked (no CRL or OCSP is fetched): a client is cut off by
/// taking its CA out of the directory, so short-lived client certificates or a CA per client group are the way to go.
/// </summary>
public sealed class ClientCertificateTrust
{
    /// <summary>TLS client authentication, the extended key usage a client certificate needs if it names any.</summary>
    private static readonly Oid ClientAuthentication = new("1.3.6.1.5.5.7.3.2");

    private readonly X509Certificate2Collection _authorities;

    private ClientCertificateTrust(X509Certificate2Collection authorities, string directory, IReadOnlyList<string> warnings)
    {
        _authorities = authorities;
        Directory = directory;
        Warnings = warnings;
    }

    public string Directory { get; }

    public int Count => _authorities.Count;

    /// <summary>What the operator should hear at start: a CA that has expired (it admits nobody) or is not yet valid.</summary>
    public IReadOnlyList<string> Warnings { get; }

    /// <summary>
    /// Every regular file in <paramref name="directory"/> (hidden files and <c>*.md</c> aside) must hold PEM CA
    /// certificates; anything else stops the daemon naming the file, so a typo never trusts less (or more) than meant.
    /// </summary>
    /// <exception cref="InvalidDataException">The directory is missing or empty, or a file is not a CA certificate.</exception>
    public static ClientCertificateTrust Load(string directory)
    {
        const string setting = $"{DaemonOptions.Section}:{nameof(DaemonOptions.TlsClientCaDir)}";
        if (!System.IO.Directory.Exists(directory))
            throw new InvalidDataException($"{setting} '{directory}' does not exist; create it and put the CA certificates of your clients in it (PEM)");

        var authorities = new X509Certificate2Collection();
        var warnings = new List<string>();
        var files = new DirectoryInfo(directory).EnumerateFiles()
            .Where(f => !f.Name.StartsWith('.') && !f.Name.EndsWith(".md", StringComparison.OrdinalIgnoreCase))
            .OrderBy(f => f.Name, StringComparer.Ordinal);
        foreach (var file in files)
        {
            var inFile = new X509Certificate2Collection();
            try
            {
                inFile.ImportFromPemFile(file.FullName);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or CryptographicException)
            {
                throw new InvalidDataException($"{setting}: cannot read {file.FullName}: {e.Message}", e);
            }

            if (inFile.Count == 0) throw new InvalidDataException($"{setting}: {file.FullName} holds no PEM certificate (-----BEGIN CERTIFICATE-----)");
            foreach (var certificate in inFile)
            {
                // A leaf here would be a trust anchor, admitting whoever holds its key and nothing it signs: refuse the mix-up.
                if (certificate.Extensions.OfType<X509BasicConstraintsExtension>().FirstOrDefault() is not { CertificateAuthority: true })
                    throw new InvalidDataException($"{setting}: {file.FullName}: '{certificate.Subject}' is not a CA certificate (basicConstraints CA:TRUE)");
                if (certificate.NotAfter < DateTime.Now) warnings.Add($"{file.FullName}: CA '{certificate.Subject}' expired on {certificate.NotAfter.ToUniversalTime():u}; it admits no client");
                else if (certificate.NotBefore > DateTime.Now) warnings.Add($"{file.FullName}: CA '{certificate.Subject}' is not valid before {certificate.NotBefore.ToUniversalTime():u}");
                authorities.Add(certificate);
            }
        }

        if (authorities.Count == 0)
            throw new InvalidDataException($"{setting} '{directory}' holds no CA certificate, so no client could connect; put your clients' CA certificates in it (PEM)");
        return new ClientCertificateTrust(authorities, directory, warnings);
    }

    /// <summary>
    /// Why <paramref name="certificate"/> may not call the daemon, or null when it may: it must chain to one of the CAs
    /// (through intermediates the client sent, <paramref name="presented"/>), every certificate in the chain must be
    /// within its validity period now, and an extended key usage, if the certificate names any, must allow client authentication.
    /// </summary>
    public string? Refusal(X509Certificate2 certificate, X509Certificate2Collection? presented)
    {
        using var chain = new X509Chain { ChainPolicy = NewPolicy() };
        if (presented is not null) chain.ChainPolicy.ExtraStore.AddRange(presented);
        if (chain.Build(certificate)) return null;
        var problems = chain.ChainStatus.Select(status => $"{status.Status} ({status.StatusInformation.Trim()})").Distinct();
        return string.Join("; ", problems);
    }

    /// <summary>
    /// The chain policy for client certificates: these CAs only, no revocation check, and no downloads (a certificate's
    /// AIA or CRL address is the client's choice, and must not make the daemon fetch anything).
    /// </summary>
    public X509ChainPolicy NewPolicy()
    {
        var policy = new X509ChainPolicy
        {
            TrustMode = X509ChainTrustMode.CustomRootTrust,
            RevocationMode = X509RevocationMode.NoCheck,
            DisableCertificateDownloads = true,
        };
        policy.CustomTrustStore.AddRange(_authorities);
        policy.ApplicationPolicy.Add(ClientAuthentication);
        return policy;
    }

    /// <summary>What a client certificate identifies in the log: its subject and the SHA-256 of its DER.</summary>
    public static string Describe(X509Certificate2 certificate) =>
        $"{certificate.Subject} (SHA-256 {Convert.ToHexStringLower(certificate.GetCertHash(HashAlgorithmName.SHA256))})";
}
