using System.Runtime.InteropServices;
using System.Text;
using System.Text.Unicode;

namespace Connectias.Sandbox.Ffi;

/// <summary>
/// The bridge's side of the C strings and buffers: arguments are read as strict UTF-8 (an overlong form,
/// a surrogate or a truncated sequence is INVALID_UTF8, never replaced), and what it returns is allocated
/// with <see cref="NativeMemory"/> so connectias_free_string and connectias_free_bytes can release it.
/// </summary>
internal static unsafe class NativeText
{
    /// <summary>
    /// Reads the NUL-terminated argument <paramref name="name"/>; returns 0, or -2 / -1 with the last error
    /// set. Argument errors carry CORRUPTED_DATA, the §4 reason for a malformed request.
    /// </summary>
    public static int Read(byte* pointer, string name, out string value)
    {
        value = "";
        var code = ReadBytes(pointer, name, out var bytes);
        if (code != ReturnCode.Ok) return code;
        value = Encoding.UTF8.GetString(bytes);
        return ReturnCode.Ok;
    }

    /// <summary>The argument's bytes (without the NUL), after the same checks as <see cref="Read"/>.</summary>
    public static int ReadBytes(byte* pointer, string name, out ReadOnlySpan<byte> bytes)
    {
        bytes = default;
        if (pointer == null) return Failures.Fail(ReturnCode.NullPointer, "CORRUPTED_DATA", $"{name} is NULL");
        bytes = MemoryMarshal.CreateReadOnlySpanFromNullTerminated(pointer);
        if (!Utf8.IsValid(bytes))
            return Failures.Fail(ReturnCode.InvalidUtf8, "CORRUPTED_DATA", $"{name} is not valid UTF-8 ({bytes.Length} bytes)");
        return ReturnCode.Ok;
    }

    /// <summary>A NUL-terminated copy of <paramref name="text"/> for the caller, who frees it with connectias_free_string.</summary>
    public static byte* AllocString(string text)
    {
        var length = Encoding.UTF8.GetByteCount(text);
        var copy = (byte*)NativeMemory.Alloc((nuint)length + 1);
        Encoding.UTF8.GetBytes(text, new Span<byte>(copy, length));
        copy[length] = 0;
        return copy;
    }

    /// <summary>A NUL-terminated copy of UTF-8 <paramref name="utf8"/> the caller already checked.</summary>
    public static byte* AllocString(ReadOnlySpan<byte> utf8)
    {
        var copy = (byte*)NativeMemory.Alloc((nuint)utf8.Length + 1);
        utf8.CopyTo(new Span<byte>(copy, utf8.Length));
        copy[utf8.Length] = 0;
        return copy;
    }

    /// <summary>
    /// A copy of <paramref name="bytes"/> for the caller, who frees it with connectias_free_bytes; never
    /// NULL, even for no bytes, so a host can tell success from failure by the pointer as well.
    /// </summary>
    public static byte* AllocBytes(ReadOnlySpan<byte> bytes)
    {
        var copy = (byte*)NativeMemory.Alloc((nuint)Math.Max(bytes.Length, 1));
        bytes.CopyTo(new Span<byte>(copy, bytes.Length));
        return copy;
    }

    public static void Free(void* pointer)
    {
        if (pointer != null) NativeMemory.Free(pointer);
    }
}
