namespace Connectias.Sandbox.Daemon.Hosting;

/// <summary>The daemon's directories: created private to its user, removed without taking the daemon down.</summary>
public static class StateDirectory
{
    private const UnixFileMode OwnerOnly = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

    /// <summary>The parent of every worker's run directory, <c>STATE/run/plugins</c>.</summary>
    public static string WorkerRunRoot(string stateDir) => Path.Combine(stateDir, "run", "plugins");

    public static void CreatePrivate(string path)
    {
        Directory.CreateDirectory(path, OwnerOnly);
        File.SetUnixFileMode(path, OwnerOnly);
    }

    /// <summary>Removes a directory tree; false (and the reason) when it could not, which the caller reports.</summary>
    public static bool TryDelete(string path, out string? problem)
    {
        problem = null;
        try
        {
            if (Directory.Exists(path)) Directory.Delete(path, recursive: true);
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            problem = e.Message;
            return false;
        }
    }
}
