using System.Diagnostics;
using System.Text;

namespace Connectias.Sandbox.Ffi.Tests;

/// <summary>
/// The C test host (host/*.c), compiled once per test run with cc against the published library in
/// ffi/ and run as a separate process per scenario, as a real FFI host would use the library.
/// </summary>
public static class CHost
{
    private static readonly TimeSpan ExitTimeout = TimeSpan.FromSeconds(120);
    private static readonly Lazy<string> Binary = new(Compile);

    /// <summary>The published libconnectias_sandbox.so and connectias_sandbox.h, copied by FfiLibrary.targets.</summary>
    public static string LibraryDirectory => Path.Combine(AppContext.BaseDirectory, "ffi");

    /// <summary>Starts <c>ffi_host SCENARIO ARGS</c>; <paramref name="environment"/> entries with a null value are removed.</summary>
    public static Process Start(string scenario, IEnumerable<string> args, IEnumerable<(string Name, string? Value)> environment)
    {
        var start = new ProcessStartInfo(Binary.Value)
        {
            RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        start.ArgumentList.Add(scenario);
        foreach (var arg in args) start.ArgumentList.Add(arg);
        foreach (var (name, value) in environment)
        {
            if (value is null) start.Environment.Remove(name);
            else start.Environment[name] = value;
        }

        return Process.Start(start)!;
    }

    /// <summary>Runs a scenario to its exit and asserts it passed (exit 0 and "ok SCENARIO"); returns its stdout.</summary>
    public static string Run(string scenario, IEnumerable<string> args, IEnumerable<(string Name, string? Value)> environment)
    {
        using var process = Start(scenario, args, environment);
        process.StandardInput.Close();
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(ExitTimeout))
        {
            process.Kill();
            Assert.Fail($"ffi_host {scenario} did not exit within {ExitTimeout.TotalSeconds} s");
        }

        return Passed(process, scenario, output.GetAwaiter().GetResult(), error.GetAwaiter().GetResult());
    }

    /// <summary>Asserts the scenario's process exited 0 after printing "ok SCENARIO"; returns its stdout.</summary>
    public static string Passed(Process process, string scenario, string output, string error)
    {
        process.WaitForExit();
        Assert.True(process.ExitCode == 0 && output.Contains($"ok {scenario}", StringComparison.Ordinal),
            $"ffi_host {scenario} exited with {process.ExitCode}\nstdout:\n{output}\nstderr:\n{error}");
        return output;
    }

    /// <summary>A key=value figure the host printed, e.g. elapsed_ms=6003.</summary>
    public static long Figure(string output, string name)
    {
        var at = output.IndexOf(name + "=", StringComparison.Ordinal);
        Assert.True(at >= 0, $"no {name} in:\n{output}");
        var digits = new string(output[(at + name.Length + 1)..].TakeWhile(char.IsAsciiDigit).ToArray());
        return long.Parse(digits, System.Globalization.CultureInfo.InvariantCulture);
    }

    private static string Compile()
    {
        var sources = Directory.GetFiles(Path.Combine(AppContext.BaseDirectory, "host"), "*.c");
        var binary = Path.Combine(AppContext.BaseDirectory, "ffi_host");
        var start = new ProcessStartInfo("cc") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        // Strict C99 with warnings as errors, as a careful host would build; the library is found at run time through its rpath.
        foreach (var arg in new[] { "-std=c99", "-Wall", "-Wextra", "-Werror", "-pthread", "-I", LibraryDirectory })
            start.ArgumentList.Add(arg);
        foreach (var source in sources) start.ArgumentList.Add(source);
        foreach (var arg in new[] { "-L", LibraryDirectory, "-lconnectias_sandbox", $"-Wl,-rpath,{LibraryDirectory}", "-o", binary })
            start.ArgumentList.Add(arg);

        using var cc = Process.Start(start)!;
        var output = new StringBuilder();
        cc.OutputDataReceived += (_, e) => output.AppendLine(e.Data);
        cc.ErrorDataReceived += (_, e) => output.AppendLine(e.Data);
        cc.BeginOutputReadLine();
        cc.BeginErrorReadLine();
        cc.WaitForExit();
        if (cc.ExitCode != 0) throw new InvalidOperationException($"cc failed to build the FFI test host:\n{output}");
        return binary;
    }
}
