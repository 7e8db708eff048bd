using System.Diagnostics;

namespace Connectias.Sandbox.TestSupport;

/// <summary>What a program run to its exit printed, and how it exited.</summary>
public sealed record ProgramExit(int ExitCode, string Output, string Error);

/// <summary>Runs a framework-dependent .NET program (its DLL, through the dotnet host) the way a user would.</summary>
public static class DotnetProgram
{
    private static readonly TimeSpan ExitTimeout = TimeSpan.FromSeconds(30);

    /// <summary>
    /// The start info for <c>dotnet DLL ARGS</c> with stdout and stderr redirected;
    /// <paramref name="environment"/> is added to the inherited environment.
    /// </summary>
    public static ProcessStartInfo StartInfo(string dll, IReadOnlyList<string> args, IEnumerable<(string Name, string Value)>? environment = null)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add(dll);
        foreach (var arg in args) start.ArgumentList.Add(arg);
        foreach (var (name, value) in environment ?? []) start.Environment[name] = value;
        return start;
    }

    /// <summary>Runs the program to its exit; a program still running after 30 s is killed and reported as a failure.</summary>
    public static ProgramExit Run(string dll, IReadOnlyList<string> args, IEnumerable<(string Name, string Value)>? environment = null)
    {
        using var process = Process.Start(StartInfo(dll, args, environment))!;
        // Both pipes are drained at once: a program that fills one while we wait on the other would block.
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(ExitTimeout))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"dotnet {Path.GetFileName(dll)} {string.Join(' ', args)} did not exit within {ExitTimeout.TotalSeconds} s");
        }

        return new ProgramExit(process.ExitCode, output.GetAwaiter().GetResult(), error.GetAwaiter().GetResult());
    }
}
