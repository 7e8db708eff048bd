namespace Connectias.Sandbox.Cli;

/// <summary>Writes files the way a careful tool does: whole or not at all, private when secret.</summary>
internal static class FileOutput
{
    /// <summary>Writes to a temporary file beside the target, then renames it over the target.</summary>
    public static void WriteAtomically(string path, byte[] content, bool overwrite)
    {
        var full = Path.GetFullPath(path);
        if (!overwrite && File.Exists(full)) throw new IOException($"'{path}' exists; pass --force to overwrite it");
        var temporary = full + $".tmp-{Environment.ProcessId}-{Guid.NewGuid():N}";
        try
        {
            using (var stream = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write))
            {
                stream.Write(content);
                stream.Flush(flushToDisk: true);
            }

            File.Move(temporary, full, overwrite: true);
        }
        finally
        {
            if (File.Exists(temporary)) File.Delete(temporary);
        }
    }

    /// <summary>Creates a file readable only by its owner (mode 0600); never overwrites.</summary>
    public static void WritePrivate(string path, string content)
    {
        var options = new FileStreamOptions
        {
            Mode = FileMode.CreateNew,
            Access = FileAccess.Write,
            UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
        };
        using var stream = new FileStream(path, options);
        using var writer = new StreamWriter(stream);
        writer.Write(content);
    }
}
