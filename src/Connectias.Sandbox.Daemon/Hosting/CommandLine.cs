namespace Connectias.Sandbox.Daemon.Hosting;

/// <summary>connectias-sandboxd's flags: the usage text and their mapping onto <c>Sandbox:*</c> settings.</summary>
public static class CommandLine
{
    public const string Usage = """
        connectias-sandboxd - runs untrusted WebAssembly plugins, one isolated worker process each.

        Usage: connectias-sandboxd [options]

          --socket PATH      public Unix socket (default: STATE/run/sandboxd.sock; mode 0600, directory 0700)
          --state-dir DIR    state: audit log, plugin storage, trust store, sockets
                             (default: $XDG_STATE_HOME/connectias-sandbox or ~/.local/state/connectias-sandbox)
          --trust-dir DIR    trusted public keys and revoked.txt (default: STATE/trust)
          --policy FILE      administrator policy, JSON (default: built-in: storage and system_info granted)
          --allow-unsigned   accept packages with no signature (development only)
          --tcp IP:PORT      also listen on TCP (off by default), e.g. 127.0.0.1:7700: TLS 1.2+ and HTTP/2,
                             every client must present a certificate from a CA in --tls-client-ca; needs:
          --tls-cert FILE    the TCP listener's certificate, PEM (intermediates may follow it in the file)
          --tls-key FILE     its private key, unencrypted PEM
          --tls-client-ca DIR
                             CA certificates (PEM files) client certificates must chain to; no others
          --tcp-insecure     instead of TLS: --tcp in plaintext, no client certificates, so anyone who
                             reaches the port has the whole API (logged as a warning at every start)
          --sandbox MODE     auto (bubblewrap when it works), bubblewrap, or none (default: auto)
          --no-dev-key       do not create or trust the local development signing key
          -h, --help         show this help

        Every setting can also come from appsettings.json or environment variables (Sandbox__StateDir,
        Sandbox__QueueLimit, ...); README.md lists them all with their defaults. A bad value stops the
        daemon at start naming the setting. SIGTERM or SIGINT unloads every plugin and exits 0.
        """;

    /// <summary>Each flag and the setting it sets.</summary>
    public static readonly IReadOnlyDictionary<string, string> Switches = new Dictionary<string, string>
    {
        ["--socket"] = "Sandbox:Socket",
        ["--state-dir"] = "Sandbox:StateDir",
        ["--trust-dir"] = "Sandbox:TrustDir",
        ["--policy"] = "Sandbox:Policy",
        ["--allow-unsigned"] = "Sandbox:AllowUnsigned",
        ["--tcp"] = "Sandbox:Tcp",
        ["--tcp-insecure"] = "Sandbox:TcpInsecure",
        ["--tls-cert"] = "Sandbox:TlsCertificate",
        ["--tls-key"] = "Sandbox:TlsKey",
        ["--tls-client-ca"] = "Sandbox:TlsClientCaDir",
        ["--sandbox"] = "Sandbox:Sandbox",
        ["--no-dev-key"] = "Sandbox:DevelopmentKey",
    };

    public static bool AsksForHelp(string[] args) => args.Contains("--help") || args.Contains("-h");

    /// <summary>Bare switches become key=value pairs for the configuration system.</summary>
    public static string[] Normalize(string[] args) => args.Select(arg => arg switch
    {
        "--allow-unsigned" => "--allow-unsigned=true",
        "--tcp-insecure" => "--tcp-insecure=true",
        "--no-dev-key" => "--no-dev-key=false",
        _ => arg,
    }).ToArray();

    /// <summary>The first flag that is not one of <see cref="Switches"/>, if any.</summary>
    public static string? UnknownOption(string[] normalized) =>
        normalized.Where(a => a.StartsWith('-')).Select(a => a.Split('=')[0]).FirstOrDefault(name => !Switches.ContainsKey(name));
}
