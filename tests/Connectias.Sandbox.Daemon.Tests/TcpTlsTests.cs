using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using Connectias.Sandbox.Client;
using Connectias.Sandbox.V1;
using Grpc.Health.V1;
using Grpc.Net.Client;

namespace Connectias.Sandbox.Daemon.Tests;

/// <summary>
/// The TCP listener with mutual TLS (SPEC §5), against one real daemon: a client certificate from the configured CA gets
/// the API; none, another CA's or an expired one is refused in the TLS handshake, and the daemon logs who and why.
/// </summary>
public sealed class TcpTlsTests(TcpTlsTests.Daemon fixture) : IClassFixture<TcpTlsTests.Daemon>
{
    public sealed class Daemon : IDisposable
    {
        public Daemon()
        {
            Port = FreePort();
            Process = DaemonProcess.Start(new DaemonStartInfo { Arguments = Certificates.DaemonArguments(Port) });
        }

        public TestCertificates Certificates { get; } = new();
        public int Port { get; }
        public DaemonProcess Process { get; }

        public void Dispose()
        {
            Process.Dispose();
            Certificates.Dispose();
        }
    }

    private enum Handshake { Failed, ClosedAfterHandshake, ServedHttp2 }

    private readonly DaemonProcess _daemon = fixture.Process;
    private readonly TestCertificates _pki = fixture.Certificates;
    private Uri Address => new($"https://127.0.0.1:{fixture.Port}");

    internal static int FreePort()
    {
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        return ((IPEndPoint)probe.LocalEndpoint).Port;
    }

    [Fact]
    public async Task A_client_certificate_from_the_trusted_ca_lists_and_executes_plugins()
    {
        Assert.Contains($"and tcp 127.0.0.1:{fixture.Port} (TLS; client certificates from 1 CA certificate(s) in {_pki.ClientCaDir}", _daemon.Log);
        var start = Assert.Single(_daemon.AuditRecords(), r => r.Event == "DAEMON_START").Details;
        Assert.Equal("mutual-tls", start.GetProperty("tcp_security").GetString());

        using var client = SandboxClient.ConnectAddress(Address, _pki.ClientTls());
        Assert.Equal(PluginState.Ready, (await client.LoadAsync(_daemon.Package("hello", "com.test.tls", ",\"permissions\":[\"storage\",\"system_info\"]"))).State);
        Assert.Equal("Hello, tls!", (await client.ExecuteAsync("com.test.tls", "greet", "tls"u8.ToArray())).Output.ToStringUtf8());
        Assert.Contains(await client.ListAsync(), plugin => plugin.PluginId == "com.test.tls");
        Assert.Empty((await client.UnloadAsync("com.test.tls")).Issues);

        // Who connected is in the log: the certificate's subject and fingerprint.
        var fingerprint = Convert.ToHexStringLower(_pki.Client.GetCertHash(System.Security.Cryptography.HashAlgorithmName.SHA256));
        await LogShows($@"tcp connection from 127\.0\.0\.1:\d+: client certificate CN=test-client \(SHA-256 {fingerprint}\)");
    }

    [Fact]
    public void The_cli_connects_with_its_certificate_key_and_ca_options()
    {
        var (code, output, error) = Cli(["ps", "--address", Address.ToString(), "--tls-cert", _pki.ClientCertificateFile, "--tls-key", _pki.ClientKeyFile, "--tls-ca", _pki.CaFile]);
        Assert.True(code == 0, error);
        Assert.StartsWith("ID ", output);

        Assert.Equal(2, Cli(["ps", "--address", Address.ToString(), "--tls-cert", _pki.ClientCertificateFile]).ExitCode); // all three or none
        var plaintext = Cli(["ps", "--address", $"http://127.0.0.1:{fixture.Port}", "--tls-cert", _pki.ClientCertificateFile, "--tls-key", _pki.ClientKeyFile, "--tls-ca", _pki.CaFile]);
        Assert.Equal(2, plaintext.ExitCode);
        Assert.Contains("need an https:// --address", plaintext.Error);
        var without = Cli(["ps", "--address", Address.ToString()]); // no client certificate: the daemon hangs up
        Assert.Equal(4, without.ExitCode);
    }

    private static (int ExitCode, string Output, string Error) Cli(string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var code = Connectias.Sandbox.Cli.CliApp.Run(args, output, error);
        return (code, output.ToString(), error.ToString());
    }

    [Fact]
    public async Task A_load_by_path_over_tls_is_still_permission_denied()
    {
        var file = Path.Combine(_daemon.StateDir, "by-path-tls.zip");
        File.WriteAllBytes(file, _daemon.Package("noop", "com.test.tls-by-path"));
        using var client = SandboxClient.ConnectAddress(Address, _pki.ClientTls());
        var refused = await Assert.ThrowsAsync<SandboxException>(() => client.LoadFromPathAsync(file));
        Assert.Equal(ErrorReason.PermissionDenied, refused.Reason);
    }

    [Fact]
    public async Task A_client_without_a_certificate_is_refused_in_the_handshake()
    {
        // The daemon's TLS handshake (AuthenticateAsServer) fails on the client's certificate and the connection is closed
        // before any HTTP/2 is spoken. The client may by then think itself connected (it sent its Finished), so what it
        // sees is the connection closing with no answer to the HTTP/2 preface, in TLS 1.2 and 1.3 alike.
        Assert.NotEqual(Handshake.ServedHttp2, await Connect(null, SslProtocols.Tls12));
        Assert.NotEqual(Handshake.ServedHttp2, await Connect(null, SslProtocols.Tls13));
        Assert.Equal(Handshake.ServedHttp2, await Connect(_pki.Client, SslProtocols.Tls12)); // the probe itself works
        Assert.Equal(Handshake.ServedHttp2, await Connect(_pki.Client, SslProtocols.Tls13));

        using var channel = GrpcChannel.ForAddress(Address, new GrpcChannelOptions
        {
            HttpHandler = new SocketsHttpHandler { SslOptions = new SslClientAuthenticationOptions { RemoteCertificateValidationCallback = (_, _, _, _) => true } },
        });
        var error = await Assert.ThrowsAsync<Grpc.Core.RpcException>(() => new Health.HealthClient(channel).CheckAsync(new HealthCheckRequest()).ResponseAsync);
        // UNAVAILABLE when the daemon's refusal arrives after the client finished its handshake, INTERNAL when during it.
        Assert.Contains(error.StatusCode, new[] { Grpc.Core.StatusCode.Unavailable, Grpc.Core.StatusCode.Internal });
        await LogShows(@"tcp connection from 127\.0\.0\.1:\d+ failed in the TLS handshake: no client certificate");
    }

    [Fact]
    public async Task A_certificate_from_another_ca_is_refused()
    {
        using var otherCa = TestCertificates.NewCa("CN=Connectias Test CA"); // the same name, another key
        using var stranger = TestCertificates.Issue(otherCa, "CN=stranger");
        Assert.NotEqual(Handshake.ServedHttp2, await Connect(stranger, SslProtocols.Tls12));
        using var client = SandboxClient.ConnectAddress(Address, _pki.ClientTls(stranger));
        await Assert.ThrowsAsync<SandboxUnavailableException>(() => client.ListAsync());
        await LogShows(@"tcp connection from 127\.0\.0\.1:\d+ refused: client certificate CN=stranger \(SHA-256 [0-9a-f]{64}\): (UntrustedRoot|PartialChain)");
    }

    [Fact]
    public async Task An_expired_client_certificate_is_refused()
    {
        using var expired = TestCertificates.Issue(_pki.Ca, "CN=expired-client", notBefore: DateTimeOffset.UtcNow.AddDays(-10), notAfter: DateTimeOffset.UtcNow.AddDays(-1));
        Assert.NotEqual(Handshake.ServedHttp2, await Connect(expired, SslProtocols.Tls12));
        using var client = SandboxClient.ConnectAddress(Address, _pki.ClientTls(expired));
        await Assert.ThrowsAsync<SandboxUnavailableException>(() => client.ListAsync());
        await LogShows(@"tcp connection from 127\.0\.0\.1:\d+ refused: client certificate CN=expired-client \(SHA-256 [0-9a-f]{64}\): .*NotTimeValid");
    }

    [Fact]
    public async Task A_server_certificate_from_a_ca_the_client_does_not_trust_is_refused_by_the_client()
    {
        using var otherCa = TestCertificates.NewCa("CN=Someone Else");
        using var client = SandboxClient.ConnectAddress(Address, new SandboxTls(_pki.Client, [otherCa]));
        var error = await Assert.ThrowsAsync<SandboxUnavailableException>(() => client.ListAsync());
        Assert.Contains("TLS handshake", error.Message);
    }

    /// <summary>Waits for the daemon's log to show <paramref name="pattern"/>: it logs through a queue, so a line may trail the client's error.</summary>
    private async Task LogShows(string pattern)
    {
        for (var waited = 0; waited < 10_000 && !System.Text.RegularExpressions.Regex.IsMatch(_daemon.Log, pattern); waited += 50) await Task.Delay(50);
        Assert.Matches(pattern, _daemon.Log);
    }

    /// <summary>How far a raw TLS connection with <paramref name="certificate"/> (none: null) gets: the HTTP/2 preface answered is success.</summary>
    private async Task<Handshake> Connect(X509Certificate2? certificate, SslProtocols protocol)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(IPAddress.Loopback, fixture.Port, timeout.Token);
        await using var tls = new SslStream(tcp.GetStream());
        try
        {
            await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
            {
                TargetHost = "127.0.0.1",
                EnabledSslProtocols = protocol,
                ApplicationProtocols = [SslApplicationProtocol.Http2],
                LocalCertificateSelectionCallback = certificate is null ? null : (_, _, _, _, _) => certificate,
                RemoteCertificateValidationCallback = (_, _, _, _) => true, // the server's certificate is not what this probes
            }, timeout.Token);
        }
        catch (Exception e) when (e is AuthenticationException or IOException)
        {
            return Handshake.Failed;
        }

        try
        {
            await tls.WriteAsync("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"u8.ToArray(), timeout.Token);
            // A server that accepted the client answers the preface with its SETTINGS frame.
            return await tls.ReadAsync(new byte[9], timeout.Token) > 0 ? Handshake.ServedHttp2 : Handshake.ClosedAfterHandshake;
        }
        catch (Exception e) when (e is AuthenticationException or IOException)
        {
            return Handshake.ClosedAfterHandshake;
        }
    }
}

/// <summary>The TCP listener's settings refused at start: missing TLS settings, and files that are not what they should be.</summary>
public sealed class TcpTlsSettingsTests
{
    private static string NeverCreated() => Path.Combine(Path.GetTempPath(), $"connectias-never-{Guid.NewGuid():N}");

    [Fact]
    public void Tcp_without_tls_settings_stops_the_daemon_naming_them_and_the_insecure_alternative()
    {
        var stateDir = NeverCreated();
        var (code, _, error) = DaemonProcess.RunToExit("--state-dir", stateDir, "--tcp", "127.0.0.1:7700");
        Assert.Equal(2, code);
        Assert.Contains("Sandbox:Tcp '127.0.0.1:7700' is served only with TLS and client certificates", error);
        Assert.Contains("TlsCertificate (--tls-cert FILE), TlsKey (--tls-key FILE), TlsClientCaDir (--tls-client-ca DIR) are not set", error);
        Assert.Contains("--tcp-insecure", error);
        Assert.False(Directory.Exists(stateDir));
    }

    [Fact]
    public void Kestrel_settings_that_would_open_a_listener_of_their_own_stop_the_daemon()
    {
        var stateDir = NeverCreated();
        var (code, _, error) = DotnetProgram.Run(DaemonProcess.Dll, ["--state-dir", stateDir], [("Kestrel__Endpoints__Open__Url", "http://127.0.0.1:7799")]);
        Assert.Equal(2, code);
        Assert.Contains("setting Kestrel:Endpoints (from an environment variable Kestrel__...) is not supported", error);
        Assert.False(Directory.Exists(stateDir));
    }

    [Fact]
    public void Bad_tls_files_stop_the_daemon_naming_the_file()
    {
        using var pki = new TestCertificates();
        var port = TcpTlsTests.FreePort();
        string[] Args(string certificate, string key, string caDir) =>
            ["--state-dir", NeverCreated(), "--tcp", $"127.0.0.1:{port}", "--tls-cert", certificate, "--tls-key", key, "--tls-client-ca", caDir];

        var missing = Path.Combine(pki.Directory, "missing.pem");
        AssertRefused(Args(missing, pki.ServerKeyFile, pki.ClientCaDir), $"Sandbox:TlsCertificate '{missing}' cannot be read");
        AssertRefused(Args(pki.ServerKeyFile, pki.ServerKeyFile, pki.ClientCaDir), $"Sandbox:TlsCertificate '{pki.ServerKeyFile}' holds no PEM certificate");
        AssertRefused(Args(pki.ServerCertificateFile, pki.ClientKeyFile, pki.ClientCaDir), $"Sandbox:TlsKey '{pki.ClientKeyFile}' is not the private key of the certificate");
        AssertRefused(Args(pki.ServerCertificateFile, pki.ServerCertificateFile, pki.ClientCaDir), $"Sandbox:TlsKey '{pki.ServerCertificateFile}' holds no PEM private key");
        using (var expired = TestCertificates.Issue(pki.Ca, "CN=127.0.0.1", server: true, DateTimeOffset.UtcNow.AddDays(-10), DateTimeOffset.UtcNow.AddDays(-1)))
        {
            var (certificate, key) = pki.Write("expired-server", expired);
            AssertRefused(Args(certificate, key, pki.ClientCaDir), $"Sandbox:TlsCertificate '{certificate}': the certificate 'CN=127.0.0.1' expired on");
        }

        AssertRefused(Args(pki.ServerCertificateFile, pki.ServerKeyFile, Path.Combine(pki.Directory, "no-such-dir")), "Sandbox:TlsClientCaDir '" + Path.Combine(pki.Directory, "no-such-dir") + "' does not exist");
        var empty = Directory.CreateDirectory(Path.Combine(pki.Directory, "empty-cas")).FullName;
        AssertRefused(Args(pki.ServerCertificateFile, pki.ServerKeyFile, empty), $"Sandbox:TlsClientCaDir '{empty}' holds no CA certificate");
        var leafInCas = Directory.CreateDirectory(Path.Combine(pki.Directory, "leaf-cas")).FullName;
        File.Copy(pki.ClientCertificateFile, Path.Combine(leafInCas, "client.pem"));
        AssertRefused(Args(pki.ServerCertificateFile, pki.ServerKeyFile, leafInCas), $"{Path.Combine(leafInCas, "client.pem")}: 'CN=test-client' is not a CA certificate");
        File.WriteAllText(Path.Combine(empty, "notes.txt"), "not a certificate");
        AssertRefused(Args(pki.ServerCertificateFile, pki.ServerKeyFile, empty), $"{Path.Combine(empty, "notes.txt")} holds no PEM certificate");
    }

    private static void AssertRefused(string[] args, string expected)
    {
        var (code, _, error) = DaemonProcess.RunToExit(args);
        Assert.True(code == 1, $"exit {code}: {error}");
        Assert.Contains(expected, error);
    }
}
