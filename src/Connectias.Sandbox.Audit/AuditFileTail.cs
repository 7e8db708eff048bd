namespace Connectias.Sandbox.Audit;

/// <summary>What the writer found and removed at the end of the log when it opened it: a record cut short.</summary>
/// <param name="BytesDropped">The bytes after the last whole record, which were removed.</param>
/// <param name="KeptBytes">The file's length afterwards: whole records only.</param>
public sealed record AuditTailRecovery(long BytesDropped, long KeptBytes);

/// <summary>
/// Reads the end of an audit log backwards, so opening a log of any size costs a few blocks: where its last whole
/// record ends (a record is whole once its closing newline is written) and what that record is.
/// </summary>
internal static class AuditFileTail
{
    private const int BlockSize = 64 * 1024;

    /// <summary>The length of the file up to and including its last newline (0 when it has none).</summary>
    public static long EndOfLastWholeLine(Stream file) => LastIndexOfNewline(file, file.Length) + 1;

    /// <summary>The last non-empty line before <paramref name="end"/> (which ends with a newline), without it; null if none.</summary>
    public static byte[]? LastLine(Stream file, long end)
    {
        var lineEnd = end;
        while (lineEnd > 0)
        {
            var start = LastIndexOfNewline(file, lineEnd - 1) + 1; // lineEnd - 1 is the line's own newline
            if (start < lineEnd - 1) return Read(file, start, lineEnd - 1 - start);
            lineEnd = start; // an empty line: look before it
        }

        return null;
    }

    /// <summary>The non-empty lines before <paramref name="end"/>; only for a log whose last record cannot be read.</summary>
    public static long CountLines(Stream file, long end)
    {
        file.Position = 0;
        var buffer = new byte[BlockSize];
        long lines = 0, read = 0;
        var previous = (byte)'\n';
        while (read < end)
        {
            var count = file.Read(buffer, 0, (int)Math.Min(buffer.Length, end - read));
            if (count == 0) break;
            foreach (var b in buffer.AsSpan(0, count))
            {
                if (b == '\n' && previous != '\n') lines++;
                previous = b;
            }

            read += count;
        }

        return lines;
    }

    /// <summary>The offset of the last newline before <paramref name="before"/>, or -1.</summary>
    private static long LastIndexOfNewline(Stream file, long before)
    {
        var buffer = new byte[BlockSize];
        var end = before;
        while (end > 0)
        {
            var start = Math.Max(0, end - BlockSize);
            var length = (int)(end - start);
            ReadExactly(file, start, buffer.AsSpan(0, length));
            var at = buffer.AsSpan(0, length).LastIndexOf((byte)'\n');
            if (at >= 0) return start + at;
            end = start;
        }

        return -1;
    }

    private static byte[] Read(Stream file, long offset, long length)
    {
        var bytes = new byte[length];
        ReadExactly(file, offset, bytes);
        return bytes;
    }

    private static void ReadExactly(Stream file, long offset, Span<byte> into)
    {
        file.Position = offset;
        file.ReadExactly(into);
    }
}
