namespace Connectias.Sandbox;

/// <summary>
/// Default locations, shared by the daemon and the CLI so both find each other with no flags:
/// state in <c>$XDG_STATE_HOME/connectias-sandbox</c> (or <c>~/.local/state/connectias-sandbox</c>),
/// the socket, trust store and development key below it.
/// </summary>
public static class SandboxPaths
{
    public static string DefaultStateDirectory()
    {
        var stateHome = Environment.GetEnvironmentVariable("XDG_STATE_HOME");
        if (string.IsNullOrEmpty(stateHome))
            stateHome = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".local", "state");
        return Path.Combine(stateHome, "connectias-sandbox");
    }

    public static string SocketPath(string stateDirectory) => Path.Combine(stateDirectory, "run", "sandboxd.sock");

    public static string TrustDirectory(string stateDirectory) => Path.Combine(stateDirectory, "trust");

    public static string DevelopmentKey(string stateDirectory) => Path.Combine(stateDirectory, "dev-signing.key");

    public const string DevelopmentKeyTrustFile = "local-development.pub";

    public static string AuditDirectory(string stateDirectory) => Path.Combine(stateDirectory, "audit");
}
