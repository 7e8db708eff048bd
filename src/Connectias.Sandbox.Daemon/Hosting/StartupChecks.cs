using Connectias.Sandbox.Audit;

namespace Connectias.Sandbox.Daemon.Hosting;

/// <summary>What the daemon checks about its configuration and state before it serves (SPEC §5: mistakes are refused, not ignored).</summary>
public static class StartupChecks
{
    /// <summary>The health service name whose status says whether the audit log's chain was intact at start.</summary>
    public const string AuditHealthService = "connectias.sandbox.v1.AuditLog";

    /// <summary>
    /// <c>Sandbox:*</c> settings no option has, each with where it came from (a settings file, an environment
    /// variable): a misspelt setting would otherwise be ignored without a word.
    /// </summary>
    public static List<string> UnknownSettings(IConfigurationRoot configuration)
    {
        var known = typeof(DaemonOptions).GetProperties().Where(p => p.CanWrite).Select(p => p.Name).ToHashSet(StringComparer.OrdinalIgnoreCase);
        var problems = new List<string>();
        foreach (var key in configuration.GetSection(DaemonOptions.Section).GetChildren().Select(c => c.Key).Where(key => !known.Contains(key)))
        {
            var source = configuration.Providers.Reverse()
                .FirstOrDefault(provider => provider.GetChildKeys([], DaemonOptions.Section).Contains(key, StringComparer.OrdinalIgnoreCase));
            problems.Add($"unknown setting {DaemonOptions.Section}:{key} (from {Describe(source)}); known settings: {string.Join(", ", known.Order(StringComparer.Ordinal))}");
        }

        return problems;
    }

    /// <summary>
    /// A <c>Kestrel:*</c> section (appsettings.json, <c>Kestrel__Endpoints__...</c> in the environment) would make the web
    /// server open listeners of its own beside the socket and <c>--tcp</c>, plaintext and without client certificates
    /// (SPEC §5): the daemon configures its listeners itself, so such a section is refused, naming where it came from.
    /// </summary>
    public static string? KestrelSettings(IConfigurationRoot configuration)
    {
        if (configuration.GetSection("Kestrel").GetChildren().FirstOrDefault() is not { } first) return null;
        var source = configuration.Providers.Reverse().FirstOrDefault(provider => provider.GetChildKeys([], "Kestrel").Any());
        return $"setting Kestrel:{first.Key} (from {Describe(source, "Kestrel")}) is not supported: the daemon's listeners are --socket, --tcp "
               + $"(TLS with client certificates, or --tcp-insecure) and {DaemonOptions.Section}:{nameof(DaemonOptions.MetricsListen)}";
    }

    /// <summary>The audit log's chain as found at start: intact (or absent), or where it first breaks.</summary>
    public static AuditVerification? VerifyAuditLog(string stateDir)
    {
        var path = Path.Combine(SandboxPaths.AuditDirectory(stateDir), AuditLog.FileName);
        return File.Exists(path) ? AuditVerifier.Verify(path) : null;
    }

    private static string Describe(IConfigurationProvider? provider, string section = DaemonOptions.Section) => provider switch
    {
        null => "an unknown source",
        Microsoft.Extensions.Configuration.EnvironmentVariables.EnvironmentVariablesConfigurationProvider => $"an environment variable {section}__...",
        Microsoft.Extensions.Configuration.Json.JsonConfigurationProvider json => $"the settings file {json.Source.Path}",
        _ => provider.ToString() ?? provider.GetType().Name,
    };
}
