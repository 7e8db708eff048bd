using System.CommandLine;
using System.Security.Cryptography;

namespace Connectias.Sandbox.Cli;

/// <summary>Builds the command tree. Output goes to the given writers so tests can run it in-process.</summary>
public static class CliApp
{
    public static int Run(string[] args, TextWriter output, TextWriter error)
    {
        var root = new RootCommand("connectias - package, sign and verify Connectias Sandbox plugins, and drive the daemon.");
        foreach (var command in PackageCommands.Create(output)) root.Subcommands.Add(command);
        foreach (var command in DaemonCommands.Create(output, error)) root.Subcommands.Add(command);

        var parsed = root.Parse(args);
        if (parsed.Errors.Count > 0)
        {
            foreach (var parseError in parsed.Errors) error.WriteLine($"error: {parseError.Message}");
            error.WriteLine("Run 'connectias --help' for usage.");
            return ExitCodes.Usage;
        }

        try
        {
            return parsed.Invoke(new InvocationConfiguration { Output = output, Error = error, EnableDefaultExceptionHandler = false });
        }
        catch (SandboxException e)
        {
            error.WriteLine($"{e.Reason.WireName()}: {e.Message}");
            return ExitCodes.Refused;
        }
        catch (Client.SandboxUnavailableException e)
        {
            error.WriteLine($"error: {e.Message} (is connectias-sandboxd running? see --socket)");
            return ExitCodes.DaemonUnavailable;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or CryptographicException or InvalidOperationException)
        {
            error.WriteLine($"error: {e.Message}");
            return ExitCodes.IoError;
        }
    }
}
