using System.Net.Sockets;

namespace Connectias.Sandbox.Worker;

/// <summary>
/// The reading side of the worker's connection, buffered, and able to say whether more has already arrived
/// (<see cref="DataWaiting"/>) so the session reads every frame sent before it runs the next turn.
/// </summary>
internal sealed class FrameSource(Socket socket) : Stream
{
    private readonly byte[] _buffer = new byte[64 * 1024];
    private int _start;
    private int _end;

    /// <summary>Bytes are buffered here or waiting in the socket: a read would not block.</summary>
    public bool DataWaiting => _start < _end || socket.Available > 0;

    public override int Read(Span<byte> destination)
    {
        if (_start == _end)
        {
            if (destination.Length >= _buffer.Length) return socket.Receive(destination); // a large body goes around the buffer
            _start = 0;
            _end = socket.Receive(_buffer);
            if (_end == 0) return 0;
        }

        var count = Math.Min(destination.Length, _end - _start);
        _buffer.AsSpan(_start, count).CopyTo(destination);
        _start += count;
        return count;
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
