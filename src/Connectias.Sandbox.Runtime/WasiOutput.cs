using System.Buffers.Binary;
using Wasmtime;

namespace Connectias.Sandbox.Runtime;

/// <summary>
/// WASI's <c>fd_write</c>, defined by the host in place of Wasmtime's. Wasmtime's hands stdout and stderr bytes to a
/// callback on a thread of its own, where the call's deadline cannot stop it: one <c>fd_write</c> of 64 MiB of
/// newlines once ran 2.5 s past its deadline. Here the bytes go to the plugin's log budget on the calling thread, in
/// pieces of at most <see cref="ChunkBytes"/> with the deadline checked before each, so a write ends with
/// <c>TIMEOUT</c> within a piece of its deadline. No file or socket can be opened (no preopens), so stdout and stderr
/// are the only descriptors that can be written.
/// </summary>
internal static class WasiOutput
{
    /// <summary>Bytes handed to the log between two deadline checks: at most a few milliseconds of counting newlines.</summary>
    public const int ChunkBytes = 1024 * 1024;

    private const int Success = 0;
    private const int ErrnoBadDescriptor = 8;  // EBADF
    private const int ErrnoFault = 21;         // EFAULT: a buffer outside the plugin's memory
    private const int IovecBytes = 8;          // {u32 pointer, u32 length}

    public static void Define(Linker linker, PluginInstance plugin) =>
        linker.DefineFunction(AbiContract.WasiModule, "fd_write", (Caller caller, int fd, int iovecs, int iovecCount, int writtenPointer) =>
            Write(plugin, caller, fd, iovecs, iovecCount, writtenPointer));

    private static int Write(PluginInstance plugin, Caller caller, int fd, int iovecs, int iovecCount, int writtenPointer)
    {
        plugin.HostCallCheckpoint();
        var source = fd switch
        {
            1 => PluginLogSource.Stdout,
            2 => PluginLogSource.Stderr,
            _ => (PluginLogSource?)null,
        };
        if (source is null) return ErrnoBadDescriptor;
        if (caller.GetMemory(AbiContract.MemoryExport) is not { } memory) return ErrnoFault;
        var memoryBytes = (ulong)memory.GetLength();
        if ((ulong)(uint)iovecs + (ulong)(uint)iovecCount * IovecBytes > memoryBytes || (ulong)(uint)writtenPointer + sizeof(uint) > memoryBytes)
            return ErrnoFault;

        uint written = 0;
        for (var i = 0; i < iovecCount; i++)
        {
            plugin.CheckDeadline(); // empty iovecs too: millions of them are no free loop either
            var iovec = memory.GetSpan((uint)iovecs + (long)i * IovecBytes, IovecBytes);
            var pointer = BinaryPrimitives.ReadUInt32LittleEndian(iovec);
            var length = BinaryPrimitives.ReadUInt32LittleEndian(iovec[4..]);
            if ((ulong)pointer + length > memoryBytes) return ErrnoFault;
            if ((ulong)written + length > uint.MaxValue) break; // a short write: nwritten is 32 bits; the plugin's libc writes the rest again
            for (uint offset = 0; offset < length; offset += ChunkBytes)
            {
                if (offset > 0) plugin.CheckDeadline();
                plugin.LogWriter.WriteStream(source.Value, memory.GetSpan(pointer + (long)offset, (int)Math.Min(ChunkBytes, length - offset)));
            }

            written += length;
        }

        BinaryPrimitives.WriteUInt32LittleEndian(memory.GetSpan((uint)writtenPointer, sizeof(uint)), written);
        return Success;
    }
}
