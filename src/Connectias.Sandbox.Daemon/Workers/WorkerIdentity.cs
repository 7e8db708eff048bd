using System.Globalization;
using System.Runtime.InteropServices;

namespace Connectias.Sandbox.Daemon.Workers;

/// <summary>
/// The uid and gid workers run as when the daemon is root (<c>Sandbox:WorkerUser</c>), and handing them the two
/// directories they write: the run directory (their socket) and the storage directory. Everything else a worker sees
/// is read-only or its own tmpfs.
/// </summary>
internal sealed partial class WorkerIdentity(int uid, int gid)
{
    public int Uid { get; } = uid;
    public int Gid { get; } = gid;

    [LibraryImport("libc", EntryPoint = "lchown", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int Lchown(string path, int owner, int group);

    /// <summary>"UID:GID", both numbers above 0 (a worker never runs as root).</summary>
    public static bool TryParse(string? text, out WorkerIdentity? identity)
    {
        identity = null;
        var parts = (text ?? "").Split(':');
        if (parts.Length != 2
            || !int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var uid) || uid <= 0
            || !int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var gid) || gid <= 0) return false;
        identity = new WorkerIdentity(uid, gid);
        return true;
    }

    /// <summary>
    /// Gives <paramref name="directory"/> and its entries to the worker's uid: storage written by workers of an older
    /// daemon, which ran as root, is handed over the same way. Only one level, and never through a link: a storage
    /// directory holds flat files (PluginStorage), and an entry a worker made (a link to /etc, a directory) is already
    /// its own. Descending would let a worker that still runs swap a subdirectory for a link between the daemon's
    /// look and its chown, and so have root chown a file of its choosing. The directory's parents are the daemon's,
    /// so lchown of DIRECTORY/ENTRY follows nothing.
    /// </summary>
    public void HandOver(string directory)
    {
        Chown(directory);
        foreach (var entry in Directory.EnumerateFileSystemEntries(directory, "*", new EnumerationOptions { RecurseSubdirectories = false, AttributesToSkip = 0 }))
            Chown(entry);
    }

    private void Chown(string path)
    {
        if (Lchown(path, Uid, Gid) != 0)
            throw new IOException($"cannot give {path} to the worker's uid {Uid}: errno {Marshal.GetLastPInvokeError()}");
    }

    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"uid {Uid}, gid {Gid}");
}
