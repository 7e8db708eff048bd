using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Wasmtime;

namespace Connectias.Sandbox.Runtime;

/// <summary>
/// The linear memories of plugins, made by the runtime instead of Wasmtime (Wasmtime's host memory creator) so that
/// the plugin's memory_bytes is a hard cap that is also seen: a growth past it is refused inside the growth itself
/// (memory.grow returns -1, as WebAssembly allows, and no page past the cap ever becomes accessible, so no later
/// instruction, a 1 GiB memory.fill say, can touch more than memory_bytes), and the refusal is reported to the
/// plugin whose code asked for it, which then ends the call with MEMORY_LIMIT_EXCEEDED at its next check (the
/// epoch is advanced at once, so that is within the plugin's next loop iteration or call). Wasmtime's own limiter
/// would refuse silently. A memory is one reservation of Wasmtime's size plus its guard, never moved, made
/// accessible up to the current size only.
/// </summary>
internal static unsafe partial class CappedMemory
{
    private const int ProtNone = 0, ProtReadWrite = 3;
    private const int MapPrivate = 0x02, MapAnonymous = 0x20, MapNoReserve = 0x4000;
    private const ulong Wasm32MaxBytes = 4UL << 30;

    /// <summary>The plugin whose code (or instantiation) runs on this thread: it owns the memories made and grown here.</summary>
    [ThreadStatic] private static PluginInstance? t_running;

    [StructLayout(LayoutKind.Sequential)]
    private struct LinearMemory
    {
        public void* Env;
        public delegate* unmanaged<void*, nuint*, nuint*, byte*> GetMemory;
        public delegate* unmanaged<void*, nuint, void*> GrowMemory;
        public delegate* unmanaged<void*, void> Finalizer;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct MemoryCreator
    {
        public void* Env;
        public delegate* unmanaged<void*, void*, nuint, nuint, nuint, nuint, LinearMemory*, void*> NewMemory;
        public delegate* unmanaged<void*, void> Finalizer;
    }

    /// <summary>One memory: its reservation (capacity, then guard), the accessible size and the plugin's cap.</summary>
    private struct State
    {
        public byte* Base;
        public nuint Size;
        public nuint Capacity;
        public nuint Mapped;
        public nuint Cap;
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial void* mmap(void* address, nuint length, int protection, int flags, int fd, nint offset);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int mprotect(void* address, nuint length, int protection);

    [LibraryImport("libc")]
    private static partial int munmap(void* address, nuint length);

    [LibraryImport("wasmtime", EntryPoint = "wasmtime_config_host_memory_creator_set")]
    private static partial void SetMemoryCreator(nint config, MemoryCreator* creator);

    [LibraryImport("wasmtime", EntryPoint = "wasmtime_error_new", StringMarshalling = StringMarshalling.Utf8)]
    private static partial void* NewError(string message);

    // Wasmtime .NET keeps the native config handle internal; the creator must be set on it before the engine exists.
    [UnsafeAccessor(UnsafeAccessorKind.Method, Name = "get_NativeHandle")]
    [return: UnsafeAccessorType("Wasmtime.Config+Handle, Wasmtime.Dotnet")]
    private static extern object NativeHandle(Config config);

    /// <summary>Makes every linear memory of engines built from <paramref name="config"/> a capped one.</summary>
    public static Config Use(Config config)
    {
        var handle = (SafeHandle)NativeHandle(config);
        var creator = new MemoryCreator { Env = null, NewMemory = &NewMemory, Finalizer = null };
        SetMemoryCreator(handle.DangerousGetHandle(), &creator); // copied by Wasmtime
        return config;
    }

    /// <summary>Marks <paramref name="plugin"/> as the one running on this thread (null when its code stops).</summary>
    public static void Running(PluginInstance? plugin) => t_running = plugin;

    [UnmanagedCallersOnly]
    private static void* NewMemory(void* env, void* type, nuint minimum, nuint maximum, nuint reservedBytes, nuint guardBytes, LinearMemory* result)
    {
        // Only a plugin's instantiation makes memories here; anything else would get one without a cap.
        if (t_running is not { } plugin) return NewError("a linear memory was asked for while no plugin was being loaded on this thread");
        var cap = (nuint)Math.Min((ulong)plugin.Limits.MemoryBytes, Wasm32MaxBytes);
        if (minimum > cap)
        {
            plugin.GrowthRefused((long)minimum, byProcessCap: false);
            return NewError($"the memory's minimum of {minimum} bytes is over the plugin's limit of {cap} bytes");
        }

        // A reservation Wasmtime asked for is kept exactly (its compiled code relies on it); otherwise the cap is reserved.
        var page = (nuint)Environment.SystemPageSize;
        var capacity = reservedBytes > 0 ? reservedBytes : (cap + page - 1) / page * page;
        var mapped = capacity + guardBytes;
        var reservation = mmap(null, mapped, ProtNone, MapPrivate | MapAnonymous | MapNoReserve, -1, 0);
        if (reservation == (void*)-1) return NewError($"cannot reserve {mapped} bytes for a linear memory: errno {Marshal.GetLastPInvokeError()}");
        if (minimum > 0 && mprotect(reservation, minimum, ProtReadWrite) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            munmap(reservation, mapped);
            plugin.GrowthRefused((long)minimum, byProcessCap: true);
            return NewError($"cannot commit {minimum} bytes of linear memory: errno {errno}");
        }

        var state = (State*)NativeMemory.Alloc((nuint)sizeof(State));
        *state = new State { Base = (byte*)reservation, Size = minimum, Capacity = capacity, Mapped = mapped, Cap = Math.Min(cap, capacity) };
        *result = new LinearMemory { Env = state, GetMemory = &GetMemory, GrowMemory = &GrowMemory, Finalizer = &Free };
        return null;
    }

    [UnmanagedCallersOnly]
    private static byte* GetMemory(void* env, nuint* byteSize, nuint* byteCapacity)
    {
        var state = (State*)env;
        *byteSize = state->Size;
        *byteCapacity = state->Capacity;
        return state->Base;
    }

    [UnmanagedCallersOnly]
    private static void* GrowMemory(void* env, nuint newSize)
    {
        var state = (State*)env;
        if (newSize <= state->Size) return null;
        if (newSize > state->Cap)
        {
            t_running?.GrowthRefused((long)newSize, byProcessCap: false);
            return NewError($"growth to {newSize} bytes refused: the plugin's limit is {state->Cap} bytes");
        }

        if (mprotect(state->Base + state->Size, newSize - state->Size, ProtReadWrite) != 0)
        {
            // The worker's own cap (RLIMIT_DATA) said no first: just as much a growth the plugin may not have.
            var errno = Marshal.GetLastPInvokeError();
            t_running?.GrowthRefused((long)newSize, byProcessCap: true);
            return NewError($"cannot commit linear memory up to {newSize} bytes: errno {errno}");
        }

        state->Size = newSize;
        return null;
    }

    [UnmanagedCallersOnly]
    private static void Free(void* env)
    {
        var state = (State*)env;
        munmap(state->Base, state->Mapped);
        NativeMemory.Free(state);
    }
}
