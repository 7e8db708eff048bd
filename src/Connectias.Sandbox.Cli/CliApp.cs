using System.CommandLine;
using System.Security.Cryptography;

namespace Connectias.Sandbox.Cli;

/// <summary>Builds the command tree. Output goes to the given writers so tests can run it in-process.</summary>
public static class CliApp
{
    public static int Run(string[] args, TextWriter output, TextWriter error) => Run(args, output, error, Console.OpenStandardInput);

    /// <param name="input">Opens standard input, for arguments read from it (<c>exec ID CMD -</c>).</param>
    public static int Run(string[] args, TextWriter output, TextWriter error, Func<Stream> input)
    {
        var root = new RootCommand("connectias - package, sign and verify Connectias Sandbox plugins, and drive the daemon.");
        foreach (var command in PackageCommands.Create(output)) root.Subcommands.Add(command);
        foreach (var command in DaemonCommands.Create(output, error, input)) root.Subcommands.Add(command);

        // No response files: a plugin argument that starts with '@' is an argument, never a file to expand.
        var parsed = root.Parse(args, new ParserConfiguration { ResponseFileTokenReplacer = null });
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
        catch (UsageException e)
        {
            error.WriteLine($"error: {e.Message}");
            error.WriteLine("Run 'connectias --help' for usage.");
            return ExitCodes.Usage;
        }
        catch (SandboxException e)
        {
            error.WriteLine($"{e.Reason.WireName()}: {e.Message}");
            return ExitCodes.Refused;
        }
        catch (Client.SandboxUnavailableException e)
        {
            error.WriteLine($"error: {e.Message} (is connectias-sandboxd running? see --socket and --address)");
            return ExitCodes.DaemonUnavailable;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or CryptographicException or InvalidOperationException)
        {
            error.WriteLine($"error: {e.Message}");
            return ExitCodes.IoError;
        }
    }
}

/// <summary>A command line that parsed but does not make sense (two sources for one value, say): exit code 2.</summary>
public sealed class UsageException(string message) : Exception(message);
