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

    /// <summary>
    /// Why the public socket may not live in <paramref name="directory"/>, or null. A directory the daemon creates is
    /// private (0700); one that exists is left as it is (a 1777 /tmp-like directory must stay so), but if others may
    /// write to it without the sticky bit, they could replace the socket with their own, so the daemon refuses it.
    /// </summary>
    public static string? SocketDirectoryProblem(string directory)
    {
        if (!Directory.Exists(directory)) return null;
        var mode = File.GetUnixFileMode(directory);
        var othersWrite = (mode & (UnixFileMode.GroupWrite | UnixFileMode.OtherWrite)) != 0;
        return othersWrite && (mode & UnixFileMode.StickyBit) == 0
            ? $"its directory {directory} is writable by others without the sticky bit (mode {Convert.ToString((int)mode, 8)}), so another user could replace the socket; use a private directory"
            : null;
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
