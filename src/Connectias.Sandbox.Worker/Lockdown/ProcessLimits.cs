using System.Globalization;
using System.Runtime.InteropServices;

namespace Connectias.Sandbox.Worker.Lockdown;

/// <summary>
/// The worker's resource limits on itself: no core files, and its whole-process memory cap, RLIMIT_DATA, which the kernel checks at every mapping or mprotect that
/// makes private memory writable (malloc, the .NET heap, Cranelift's compile, a linear memory's growth), so no single
/// instruction or compile can outrun it the way a sampled RSS can. Set to what the process uses now plus the plugin's
/// memory_bytes and the daemon's allowance, before the plugin's module is compiled or loaded; soft and hard alike,
/// so escaped code cannot raise it again. Reservations that are not yet writable (a memory's guard) cost nothing.
/// </summary>
internal static partial class ProcessLimits
{
    private const int RlimitData = 2;
    private const int RlimitCore = 4;

    [StructLayout(LayoutKind.Sequential)]
    private struct Rlimit
    {
        public ulong Current;
        public ulong Maximum;
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int getrlimit(int resource, out Rlimit limit);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int setrlimit(int resource, in Rlimit limit);

    /// <summary>RLIMIT_CORE 0, soft and hard.</summary>
    public static void DisableCoreDumps()
    {
        if (setrlimit(RlimitCore, new Rlimit { Current = 0, Maximum = 0 }) != 0)
            throw new InvalidOperationException($"setrlimit(RLIMIT_CORE, 0) failed: errno {Marshal.GetLastPInvokeError()}");
    }

    /// <summary>Lowers the cap to the data in use plus <paramref name="headroomBytes"/>; never raises it. Returns the cap in force.</summary>
    public static ulong Lower(ulong headroomBytes)
    {
        if (getrlimit(RlimitData, out var current) != 0) throw new InvalidOperationException($"getrlimit(RLIMIT_DATA) failed: errno {Marshal.GetLastPInvokeError()}");
        if (headroomBytes == 0) return current.Maximum;
        var wanted = DataBytesInUse() + headroomBytes;
        if (wanted >= current.Maximum) return current.Maximum;
        if (setrlimit(RlimitData, new Rlimit { Current = wanted, Maximum = wanted }) != 0)
            throw new InvalidOperationException($"setrlimit(RLIMIT_DATA, {wanted}) failed: errno {Marshal.GetLastPInvokeError()}");
        return wanted;
    }

    /// <summary>VmData: the private writable memory the kernel charges against RLIMIT_DATA.</summary>
    private static ulong DataBytesInUse()
    {
        foreach (var line in File.ReadLines("/proc/self/status"))
        {
            if (line.StartsWith("VmData:", StringComparison.Ordinal))
                return ulong.Parse(line["VmData:".Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture) * 1024;
        }

        throw new InvalidOperationException("/proc/self/status has no VmData line");
    }
}
