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
        var previous = Directory.GetCurrentDirectory();
        int code;
        lock (typeof(CliScratch)) // the working directory is process-wide
        {
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
