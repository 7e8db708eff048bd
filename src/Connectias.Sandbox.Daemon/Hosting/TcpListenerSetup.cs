using System.Net;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Https;

namespace Connectias.Sandbox.Daemon.Hosting;

/// <summary>
/// The optional TCP listener (SPEC §5). A Unix socket admits only the daemon's own user; a TCP port admits every local
/// user and maybe the network, so it is served with TLS and requires a client certificate issued by one of the CAs in
/// <c>Sandbox:TlsClientCaDir</c>, unless the operator explicitly chose plaintext (<c>--tcp-insecure</c>). A client
/// certificate identifies its holder in the log (subject and SHA-256); it does not narrow what the holder may call.
/// </summary>
public sealed class TcpListenerSetup
{
    private const string LogCategory = "Connectias.Sandbox.Daemon.Hosting.TcpListener";

    /// <summary>The connection whose TLS handshake runs in this flow of execution.</summary>
    private static readonly AsyncLocal<Peer?> Handshaking = new();

    private readonly IPEndPoint _endpoint;
    private readonly X509Certificate2? _certificate;
    private readonly X509Certificate2Collection _intermediates;
    private readonly ClientCertificateTrust? _clients;

    private TcpListenerSetup(IPEndPoint endpoint, X509Certificate2? certificate, X509Certificate2Collection intermediates, ClientCertificateTrust? clients, IReadOnlyList<string> warnings)
    {
        _endpoint = endpoint;
        _certificate = certificate;
        _intermediates = intermediates;
        _clients = clients;
        Warnings = warnings;
    }

    /// <summary>The listener for the log's "listening on" line and the audit log's DAEMON_START.</summary>
    public string Address => _endpoint.ToString();

    /// <summary>"mutual-tls" or "plaintext".</summary>
    public string Security => _clients is null ? "plaintext" : "mutual-tls";

    /// <summary>What to log as warnings at every start; for a plaintext listener, loudly that it is one.</summary>
    public IReadOnlyList<string> Warnings { get; }

    public string Description => _clients is null
        ? $"tcp {_endpoint} (PLAINTEXT, no client certificates: --tcp-insecure)"
        : $"tcp {_endpoint} (TLS; client certificates from {_clients.Count} CA certificate(s) in {_clients.Directory}; server certificate {_certificate!.Subject})";

    /// <summary>
    /// Reads the certificate, its key and the client CAs of validated <paramref name="options"/>; null without a TCP listener.
    /// </summary>
    /// <exception cref="InvalidDataException">A file cannot be read or is not what its setting says; the message names both.</exception>
    public static TcpListenerSetup? Prepare(DaemonOptions options)
    {
        if (options.Tcp is not { Length: > 0 } tcp) return null;
        var endpoint = IPEndPoint.Parse(tcp); // validated by DaemonOptionsValidator
        if (options.TcpInsecure)
        {
            return new TcpListenerSetup(endpoint, null, [], null,
            [
                $"INSECURE: the TCP listener {endpoint} is plaintext with no client certificates (--tcp-insecure): anyone who can reach it " +
                "can load, run and unload every plugin and read what they return; serve it with --tls-cert, --tls-key and --tls-client-ca instead",
            ]);
        }

        var (certificate, intermediates, warnings) = LoadServerCertificate(options.TlsCertificate!, options.TlsKey!);
        var clients = ClientCertificateTrust.Load(options.TlsClientCaDir!);
        return new TcpListenerSetup(endpoint, certificate, intermediates, clients, [.. warnings, .. clients.Warnings.Select(w => $"{nameof(DaemonOptions.TlsClientCaDir)}: {w}")]);
    }

    /// <summary>Adds the listener: HTTP/2 only, and for TLS, TLS 1.2 or 1.3 (HTTP/2 chosen by ALPN) with a client certificate required.</summary>
    public void Listen(KestrelServerOptions kestrel)
    {
        kestrel.Listen(_endpoint, listen =>
        {
            listen.Protocols = HttpProtocols.Http2;
            if (_clients is null) return;
            var clients = _clients;
            var logger = kestrel.ApplicationServices.GetRequiredService<ILoggerFactory>().CreateLogger(LogCategory);
            // Before TLS: note the peer, so the certificate check (which Kestrel calls without the connection) can name
            // it, and say so when a connection never got through the handshake.
            listen.Use(next => async connection =>
            {
                var peer = Handshaking.Value = new Peer(connection.RemoteEndPoint);
                await next(connection);
                if (!peer.Admitted && !peer.Refused)
                    logger.LogWarning("tcp connection from {Remote} failed in the TLS handshake: no client certificate, or not TLS 1.2 or 1.3", peer.Remote);
            });
            listen.UseHttps(https =>
            {
                https.ServerCertificate = _certificate;
                https.ServerCertificateChain = _intermediates;
                https.SslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13;
                https.ClientCertificateMode = ClientCertificateMode.RequireCertificate;
                https.CheckCertificateRevocation = false; // see ClientCertificateTrust: no revocation check, and nothing fetched
                // TLS builds the client's chain under our policy too (these CAs only, no downloads); the callback decides.
                https.OnAuthenticate = (_, ssl) => ssl.CertificateChainPolicy = clients.NewPolicy();
                https.ClientCertificateValidation = (certificate, chain, _) => Admit(clients, certificate, chain, logger);
            });
            listen.Use(next => connection =>
            {
                if (Handshaking.Value is { } peer) peer.Admitted = true;
                if (connection.Features.Get<ITlsConnectionFeature>()?.ClientCertificate is { } client)
                    logger.LogInformation("tcp connection from {Remote}: client certificate {Client}", connection.RemoteEndPoint, ClientCertificateTrust.Describe(client));
                return next(connection);
            });
        });
    }

    private sealed class Peer(EndPoint? remote)
    {
        public EndPoint? Remote { get; } = remote;
        public bool Refused { get; set; }
        public bool Admitted { get; set; }
    }

    private static bool Admit(ClientCertificateTrust clients, X509Certificate2 certificate, X509Chain? chain, ILogger logger)
    {
        if (clients.Refusal(certificate, chain?.ChainPolicy.ExtraStore) is not { } refusal) return true;
        var peer = Handshaking.Value;
        if (peer is not null) peer.Refused = true;
        logger.LogWarning("tcp connection from {Remote} refused: client certificate {Client}: {Refusal}", peer?.Remote, ClientCertificateTrust.Describe(certificate), refusal);
        return false;
    }

    private static (X509Certificate2 Certificate, X509Certificate2Collection Intermediates, List<string> Warnings) LoadServerCertificate(string certificateFile, string keyFile)
    {
        const string certificateSetting = $"{DaemonOptions.Section}:{nameof(DaemonOptions.TlsCertificate)}";
        const string keySetting = $"{DaemonOptions.Section}:{nameof(DaemonOptions.TlsKey)}";
        var certificatePem = ReadText(certificateSetting, certificateFile);
        var keyPem = ReadText(keySetting, keyFile);
        var all = new X509Certificate2Collection();
        try
        {
            all.ImportFromPem(certificatePem);
        }
        catch (CryptographicException e)
        {
            throw new InvalidDataException($"{certificateSetting} '{certificateFile}' is not a PEM certificate: {e.Message}", e);
        }

        if (all.Count == 0) throw new InvalidDataException($"{certificateSetting} '{certificateFile}' holds no PEM certificate (-----BEGIN CERTIFICATE-----)");
        if (keyPem.Contains("ENCRYPTED PRIVATE KEY", StringComparison.Ordinal))
            throw new InvalidDataException($"{keySetting} '{keyFile}' is encrypted; give the key unencrypted, in a file only the daemon's user may read (mode 0600)");
        if (!keyPem.Contains("PRIVATE KEY-----", StringComparison.Ordinal))
            throw new InvalidDataException($"{keySetting} '{keyFile}' holds no PEM private key (-----BEGIN PRIVATE KEY-----)");

        X509Certificate2 certificate;
        try
        {
            // The first certificate in the file is the server's; the key must be its own.
            certificate = X509Certificate2.CreateFromPem(certificatePem, keyPem);
        }
        catch (Exception e) when (e is CryptographicException or ArgumentException) // a key that is not the certificate's is an ArgumentException
        {
            throw new InvalidDataException($"{keySetting} '{keyFile}' is not the private key of the certificate in {certificateSetting} '{certificateFile}' ({e.Message})", e);
        }

        if (certificate.NotAfter < DateTime.Now)
            throw new InvalidDataException($"{certificateSetting} '{certificateFile}': the certificate '{certificate.Subject}' expired on {certificate.NotAfter.ToUniversalTime():u}");
        if (certificate.NotBefore > DateTime.Now)
            throw new InvalidDataException($"{certificateSetting} '{certificateFile}': the certificate '{certificate.Subject}' is not valid before {certificate.NotBefore.ToUniversalTime():u}");

        var warnings = new List<string>();
        var mode = File.GetUnixFileMode(keyFile);
        if ((mode & (UnixFileMode.GroupRead | UnixFileMode.OtherRead)) != 0)
            warnings.Add($"{keySetting} '{keyFile}' may be read by other users (mode {Convert.ToString((int)mode, 8)}); make it 0600");
        return (certificate, new X509Certificate2Collection(all.Skip(1).ToArray()), warnings);
    }

    private static string ReadText(string setting, string file)
    {
        try
        {
            return File.ReadAllText(file);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new InvalidDataException($"{setting} '{file}' cannot be read: {e.Message}", e);
        }
    }
}
