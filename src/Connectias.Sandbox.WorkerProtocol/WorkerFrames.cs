using System.Buffers.Binary;
using Google.Protobuf;

namespace Connectias.Sandbox.WorkerProtocol;

/// <summary>
/// The framing of the worker connection (worker.proto): a 4-byte little-endian length, then one message.
/// Both ends read through here, so a peer's length is checked against <see cref="MaxFrameBytes"/> before
/// anything is allocated for it.
/// </summary>
public static class WorkerFrames
{
    /// <summary>A package is at most 64 MiB, so a Load's module is too; outputs are capped by the plugin's limit.</summary>
    public const int MaxFrameBytes = 80 * 1024 * 1024;

    public const int HeaderBytes = 4;

    private const int GrowthStart = 1024 * 1024;

    /// <summary>The frame of <paramref name="message"/>: header and body in one buffer, for one write.</summary>
    public static byte[] Encode(IMessage message)
    {
        var size = message.CalculateSize();
        if (size > MaxFrameBytes) throw new WorkerProtocolException($"a frame of {size} bytes is over the {MaxFrameBytes}-byte limit");
        var frame = new byte[HeaderBytes + size];
        BinaryPrimitives.WriteInt32LittleEndian(frame, size);
        message.WriteTo(frame.AsSpan(HeaderBytes));
        return frame;
    }

    /// <summary>The next message, or null at a clean end of stream (between frames). Blocking.</summary>
    public static T? Read<T>(Stream stream, MessageParser<T> parser) where T : IMessage<T>
    {
        Span<byte> header = stackalloc byte[HeaderBytes];
        var got = stream.ReadAtLeast(header, HeaderBytes, throwOnEndOfStream: false);
        if (got == 0) return default;
        if (got < HeaderBytes) throw new WorkerProtocolException("the connection ended inside a frame header");
        var body = new byte[BodyLength(header)];
        if (stream.ReadAtLeast(body, body.Length, throwOnEndOfStream: false) < body.Length)
            throw new WorkerProtocolException("the connection ended inside a frame");
        return Parse(parser, body);
    }

    /// <summary>The next message, or null at a clean end of stream (between frames).</summary>
    public static async ValueTask<T?> ReadAsync<T>(Stream stream, MessageParser<T> parser, byte[] header, CancellationToken cancellation)
        where T : IMessage<T>
    {
        var got = await stream.ReadAtLeastAsync(header.AsMemory(0, HeaderBytes), HeaderBytes, throwOnEndOfStream: false, cancellation);
        if (got == 0) return default;
        if (got < HeaderBytes) throw new WorkerProtocolException("the connection ended inside a frame header");
        var length = BodyLength(header);
        // The buffer grows as the bytes arrive (doubling from 1 MiB): a peer that announces 80 MiB and sends little
        // holds little of the reader's memory.
        var body = new byte[Math.Min(length, GrowthStart)];
        var filled = 0;
        while (filled < length)
        {
            if (filled == body.Length) Array.Resize(ref body, (int)Math.Min(length, 2L * body.Length));
            var read = await stream.ReadAsync(body.AsMemory(filled, body.Length - filled), cancellation);
            if (read == 0) throw new WorkerProtocolException("the connection ended inside a frame");
            filled += read;
        }

        return Parse(parser, body);
    }

    private static int BodyLength(ReadOnlySpan<byte> header)
    {
        var length = BinaryPrimitives.ReadInt32LittleEndian(header);
        if (length is < 0 or > MaxFrameBytes) throw new WorkerProtocolException($"a frame announces {(uint)length} bytes; the limit is {MaxFrameBytes}");
        return length;
    }

    private static T Parse<T>(MessageParser<T> parser, byte[] body) where T : IMessage<T>
    {
        try
        {
            return parser.ParseFrom(body);
        }
        catch (InvalidProtocolBufferException e)
        {
            throw new WorkerProtocolException($"a frame does not parse: {e.Message}");
        }
    }
}

/// <summary>The peer broke the worker protocol: framing, an unknown or out-of-order reply, a reply of the wrong kind.</summary>
public sealed class WorkerProtocolException(string message) : Exception(message);
