using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Connectias.Sandbox.Daemon.Plugins;

/// <summary>
/// Opens a package that LoadPlugin names by path, without ever blocking and without telling the caller more about
/// the daemon's file system than whether the daemon could read a package there. The file is opened with O_NONBLOCK
/// (opening a FIFO would otherwise wait for a writer, holding a thread for good) and must then be a regular file;
/// every way of failing (missing, unreadable, a directory, a FIFO, a device) gives the same message.
/// </summary>
internal static partial class PackageFile
{
    private const int ReadOnly = 0;
    private const int NonBlocking = 0x800; // O_NONBLOCK on Linux x86-64 and arm64
    private const int CloseOnExec = 0x80000; // O_CLOEXEC

    [LibraryImport("libc", EntryPoint = "open", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int Open(string path, int flags);

    /// <summary>A seekable stream over the regular file at <paramref name="path"/>, or CORRUPTED_DATA.</summary>
    public static FileStream OpenRegular(string path)
    {
        if (string.IsNullOrWhiteSpace(path)) throw new SandboxException(ErrorReason.CorruptedData, "LoadPlugin's path is empty; give a package file or the package bytes");
        if (path.Contains('\0')) throw Unreadable(path);
        var descriptor = Open(path, ReadOnly | NonBlocking | CloseOnExec);
        if (descriptor < 0) throw Unreadable(path);
        var handle = new SafeFileHandle(descriptor, ownsHandle: true);
        try
        {
            // A FIFO, a socket or a terminal is not seekable; a directory fails here; a device has no length.
            var stream = new FileStream(handle, FileAccess.Read, bufferSize: 1);
            if (!stream.CanSeek || File.GetAttributes(handle).HasFlag(FileAttributes.Directory) || RandomAccess.GetLength(handle) == 0)
            {
                stream.Dispose();
                throw Unreadable(path);
            }

            return stream;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            handle.Dispose();
            throw Unreadable(path);
        }
    }

    private static SandboxException Unreadable(string path) => new(ErrorReason.CorruptedData,
        $"cannot read a package at '{path}': there is no regular, non-empty file there that the daemon may read");
}
