using Wasmtime;

namespace Connectias.Sandbox.Runtime;

/// <summary>
/// A plugin's linear memory as the host sees it: (pointer, length) pairs from the plugin bounds-checked, and the
/// buffers the host asks the plugin's own allocator for during a call (arguments, answers of host functions), freed
/// through <c>connectias_free</c> when the call ends. <paramref name="afterGuestCode"/> runs after the plugin's
/// allocator did: it may have grown the memory past the limit.
/// </summary>
internal sealed class GuestMemory(string pluginId, Action afterGuestCode)
{
    private readonly List<(int Pointer, int Size)> _hostBuffers = [];

    public Memory? Memory { get; set; }
    public Func<int, int>? Alloc { get; set; }
    public Action<int, int>? Free { get; set; }

    public long Length => Memory?.GetLength() ?? 0;

    /// <summary>The plugin's bytes at (pointer, length); outside its memory is a trap.</summary>
    public Span<byte> Span(Caller caller, int pointer, int length, string function)
    {
        var memory = Memory ?? caller.GetMemory(AbiContract.MemoryExport)
            ?? throw new SandboxException(ErrorReason.PluginTrapped, $"plugin {pluginId} called connectias.{function} without a memory", ErrorMetadata.For(pluginId));
        var end = (ulong)(uint)pointer + (uint)length;
        if (length < 0 || end > (ulong)memory.GetLength())
        {
            throw new SandboxException(ErrorReason.PluginTrapped,
                $"plugin {pluginId} passed connectias.{function} the buffer [{(uint)pointer}, {end}) outside its {memory.GetLength()}-byte memory",
                ErrorMetadata.For(pluginId, ("trap", "out-of-bounds host buffer")));
        }

        return memory.GetSpan((uint)pointer, length);
    }

    /// <summary>Copies host bytes into a buffer from <c>connectias_alloc</c>; 0 for empty input.</summary>
    public int CopyIn(ReadOnlySpan<byte> bytes)
    {
        if (bytes.IsEmpty) return 0;
        var pointer = Allocate(bytes.Length);
        if (pointer == 0)
        {
            afterGuestCode();
            throw new SandboxException(ErrorReason.PluginTrapped,
                $"plugin {pluginId}: connectias_alloc({bytes.Length}) returned {pointer}", ErrorMetadata.For(pluginId, ("trap", "allocation failed")));
        }

        Write(pointer, bytes);
        return pointer;
    }

    /// <summary>
    /// Allocates in the plugin and checks the result lies inside its memory; returns 0 when the plugin
    /// could not allocate. The buffer is freed (if the plugin exports connectias_free) when the call ends.
    /// </summary>
    public int Allocate(int size)
    {
        if (Alloc is null) return 0; // only during instantiation, before the exports are bound
        var pointer = Alloc(size);
        afterGuestCode();
        if (pointer == 0) return 0;
        var end = (ulong)(uint)pointer + (uint)size;
        if (end > (ulong)Memory!.GetLength())
        {
            throw new SandboxException(ErrorReason.PluginTrapped,
                $"plugin {pluginId}: connectias_alloc({size}) returned {(uint)pointer}, outside its memory", ErrorMetadata.For(pluginId, ("trap", "bad allocation")));
        }

        _hostBuffers.Add((pointer, size));
        return pointer;
    }

    /// <summary>Fills a buffer <see cref="Allocate"/> returned (and so already bounds-checked).</summary>
    public void Write(int pointer, ReadOnlySpan<byte> bytes) => bytes.CopyTo(Memory!.GetSpan((uint)pointer, bytes.Length));

    public void FreeHostBuffers()
    {
        if (Free is null) return;
        // Newest first, so a plugin with a simple stack-like allocator gets all of it back.
        for (var i = _hostBuffers.Count - 1; i >= 0; i--) Free(_hostBuffers[i].Pointer, _hostBuffers[i].Size);
        _hostBuffers.Clear();
    }

    /// <summary>At a call's end, whether or not they were freed: the plugin's allocator is not called after a fault.</summary>
    public void ForgetHostBuffers() => _hostBuffers.Clear();
}
