using System.Buffers.Binary;

namespace Connectias.Sandbox.Packaging;

/// <summary>
/// Reads the entry count from a zip's end-of-central-directory record (and its zip64 form) before
/// <see cref="System.IO.Compression.ZipArchive"/> is allowed to build a list of millions of entries.
/// </summary>
internal static class ZipEndRecord
{
    private const uint EndSignature = 0x06054b50;
    private const uint Zip64LocatorSignature = 0x07064b50;
    private const uint Zip64EndSignature = 0x06064b50;
    private const int EndRecordSize = 22;

    /// <summary>The declared number of entries, or null when the stream has no end record at all.</summary>
    public static long? ReadEntryCount(Stream stream)
    {
        var tailLength = (int)Math.Min(stream.Length, EndRecordSize + ushort.MaxValue);
        if (tailLength < EndRecordSize) return null;
        var tail = new byte[tailLength];
        stream.Position = stream.Length - tailLength;
        stream.ReadExactly(tail);

        for (var at = tailLength - EndRecordSize; at >= 0; at--)
        {
            if (BinaryPrimitives.ReadUInt32LittleEndian(tail.AsSpan(at)) != EndSignature) continue;
            long count = BinaryPrimitives.ReadUInt16LittleEndian(tail.AsSpan(at + 10));
            if (count != ushort.MaxValue) return count;
            return ReadZip64EntryCount(stream, stream.Length - tailLength + at) ?? count;
        }

        return null;
    }

    private static long? ReadZip64EntryCount(Stream stream, long endRecordOffset)
    {
        const int locatorSize = 20;
        if (endRecordOffset < locatorSize) return null;
        var locator = new byte[locatorSize];
        stream.Position = endRecordOffset - locatorSize;
        stream.ReadExactly(locator);
        if (BinaryPrimitives.ReadUInt32LittleEndian(locator) != Zip64LocatorSignature) return null;
        var recordOffset = BinaryPrimitives.ReadInt64LittleEndian(locator.AsSpan(8));
        if (recordOffset < 0 || recordOffset + 40 > stream.Length) return null;
        var record = new byte[40];
        stream.Position = recordOffset;
        stream.ReadExactly(record);
        if (BinaryPrimitives.ReadUInt32LittleEndian(record) != Zip64EndSignature) return null;
        var count = BinaryPrimitives.ReadInt64LittleEndian(record.AsSpan(32));
        return count < 0 ? long.MaxValue : count;
    }
}
