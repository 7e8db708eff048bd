namespace Connectias.Sandbox.Cli;

/// <summary>The exit codes of <c>connectias</c>, documented in README.md.</summary>
public static class ExitCodes
{
    public const int Success = 0;

    /// <summary>The package (or request) was refused; stderr starts with the SPEC reason.</summary>
    public const int Refused = 1;

    /// <summary>The command line itself was wrong.</summary>
    public const int Usage = 2;

    /// <summary>A file could not be read or written, or a key could not be used.</summary>
    public const int IoError = 3;

    /// <summary>The daemon could not be reached on its socket.</summary>
    public const int DaemonUnavailable = 4;
}
