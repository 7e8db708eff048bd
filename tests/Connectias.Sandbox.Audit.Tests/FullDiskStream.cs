namespace Connectias.Sandbox.Audit.Tests;

/// <summary>
/// The audit file as a full disk treats it: a write takes the bytes that still fit and then fails with ENOSPC (what
/// write(2) does part-way through a record), and a flush (fsync) or a truncate can be made to fail as well.
/// Everything else goes to the real file underneath.
/// </summary>
internal sealed class FullDiskStream(FileStream file) : Stream
{
    /// <summary>Bytes a write may still add; null: as many as it likes.</summary>
    public long? SpaceLeft { get; set; }

    public bool FailFlush { get; set; }
    public bool FailTruncate { get; set; }

    public override bool CanRead => true;
    public override bool CanSeek => true;
    public override bool CanWrite => true;
    public override long Length => file.Length;

    public override long Position
    {
        get => file.Position;
        set => file.Position = value;
    }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        if (SpaceLeft is not { } space || buffer.Length <= space)
        {
            file.Write(buffer);
            SpaceLeft -= buffer.Length;
            return;
        }

        file.Write(buffer[..(int)space]);
        file.Flush();
        SpaceLeft = 0;
        throw new IOException("No space left on device");
    }

    public override void Flush()
    {
        if (FailFlush) throw new IOException("Input/output error");
        file.Flush(flushToDisk: true);
    }

    public override void SetLength(long value)
    {
        if (FailTruncate) throw new IOException("Input/output error");
        file.SetLength(value);
    }

    public override int Read(byte[] buffer, int offset, int count) => file.Read(buffer, offset, count);
    public override int Read(Span<byte> buffer) => file.Read(buffer);
    public override long Seek(long offset, SeekOrigin origin) => file.Seek(offset, origin);

    protected override void Dispose(bool disposing)
    {
        if (disposing) file.Dispose();
        base.Dispose(disposing);
    }
}
