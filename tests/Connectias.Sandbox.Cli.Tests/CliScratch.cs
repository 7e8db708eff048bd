namespace Connectias.Sandbox.Cli.Tests;

/// <summary>A scratch directory the CLI runs in, in process, as a user would run it there.</summary>
public abstract class CliScratch : IDisposable
{
    private readonly string _work = Directory.CreateTempSubdirectory("connectias-cli-").FullName;

    public void Dispose() => Directory.Delete(_work, recursive: true);

    protected string Path(string relative) => System.IO.Path.Combine(_work, relative);

    protected sealed record Result(int ExitCode, string Output, string Error);

    protected Result Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int code;
        // The working directory is process-wide and test classes run in parallel: read it, change it and put
        // it back under one lock, or another class's scratch directory (deleted by now) could be restored.
        lock (typeof(CliScratch))
        {
            var previous = Directory.GetCurrentDirectory();
            Directory.SetCurrentDirectory(_work);
            try
            {
                code = CliApp.Run(args, output, error);
            }
            finally
            {
                Directory.SetCurrentDirectory(previous);
            }
        }

        return new Result(code, output.ToString(), error.ToString());
    }
}
