using System.Runtime.InteropServices;

namespace Connectias.Sandbox.Worker.Lockdown;

/// <summary>
/// The worker's seccomp allow-list: once installed (on every thread, and inherited by threads started later) any
/// system call outside it kills the whole process with SIGSYS, which the daemon reports as SECURITY_VIOLATION. It is
/// installed after the daemon's connection is accepted and before the first request is read, so what an escaped
/// plugin could call is only what serving needs: memory, threads, futexes, signals to itself, reads and writes on
/// descriptors it already holds, and the file calls of its storage directory. No socket, connect, bind, execve,
/// fork, ptrace, mount, mknod, unshare, setns, keyctl, bpf, io_uring, perf_event_open, userfaultfd or memfd_create
/// (anonymous files are RAM that neither RLIMIT_DATA nor the RSS monitor would count).
/// The list was taken from strace of the native and JIT workers running every sample plugin (operator's guide).
/// x86-64 only; elsewhere the worker runs without it and says so in its log.
/// </summary>
internal static unsafe partial class SyscallFilter
{
    private const uint AuditArchX8664 = 0xC000003E;
    private const uint X32SyscallBit = 0x40000000;
    private const uint CloneThread = 0x00010000;
    private const uint Enosys = 38;

    private const uint RetKillProcess = 0x80000000;
    private const uint RetAllow = 0x7FFF0000;
    private const uint RetErrno = 0x00050000;

    // seccomp_data: int nr; u32 arch; u64 instruction_pointer; u64 args[6] (little-endian: low halves first).
    private const uint OffsetNr = 0, OffsetArch = 4, OffsetArg0Low = 16, OffsetArg1Low = 24;

    private const ushort LoadWordAbsolute = 0x20, JumpEqual = 0x15, JumpGreaterOrEqual = 0x35, JumpSet = 0x45, Return = 0x06;

    /// <summary>Calls allowed whatever their arguments.</summary>
    private static readonly (string Name, uint Number)[] Allowed =
    [
        ("read", 0), ("write", 1), ("readv", 19), ("writev", 20), ("pread64", 17), ("pwrite64", 18), ("preadv", 295), ("pwritev", 296),
        ("preadv2", 327), ("pwritev2", 328), ("close", 3), ("close_range", 436), ("fstat", 5), ("newfstatat", 262), ("stat", 4),
        ("lstat", 6), ("statx", 332), ("statfs", 137), ("fstatfs", 138), ("lseek", 8),
        ("mmap", 9), ("mprotect", 10), ("munmap", 11), ("mremap", 25), ("madvise", 28), ("brk", 12), ("msync", 26), ("mincore", 27),
        ("rt_sigaction", 13), ("rt_sigprocmask", 14), ("rt_sigreturn", 15), ("rt_sigtimedwait", 128), ("rt_sigsuspend", 130), ("sigaltstack", 131),
        // Files: only the storage directory is writable, and only what the mount namespace shows is reachable.
        ("access", 21), ("faccessat", 269), ("faccessat2", 439), ("openat", 257), ("open", 2), ("getdents64", 217), ("readlink", 89),
        ("readlinkat", 267), ("mkdir", 83), ("mkdirat", 258), ("rmdir", 84), ("unlink", 87), ("unlinkat", 263), ("rename", 82),
        ("renameat", 264), ("renameat2", 316), ("fsync", 74), ("fdatasync", 75), ("ftruncate", 77), ("fallocate", 285), ("utimensat", 280),
        ("fchmod", 91), ("fchmodat", 268), ("flock", 73), ("fadvise64", 221), ("sendfile", 40), ("copy_file_range", 326), ("getcwd", 79),
        ("futex", 202), ("set_robust_list", 273), ("get_robust_list", 274), ("rseq", 334), ("sched_yield", 24), ("sched_getaffinity", 204),
        ("sched_getparam", 143), ("sched_getscheduler", 145), ("sched_get_priority_max", 146), ("sched_get_priority_min", 147),
        ("sched_setscheduler", 144), // the JIT runtime sets SCHED_OTHER on a thread it starts (the networked plugin's turns)
 ("getcpu", 309), ("set_tid_address", 218), ("arch_prctl", 158), ("membarrier", 324),
        ("get_mempolicy", 239), ("gettid", 186), ("getpid", 39), ("getppid", 110), ("getuid", 102), ("geteuid", 107), ("getgid", 104),
        ("getegid", 108), ("getresuid", 118), ("getresgid", 120), ("getgroups", 115), ("getrandom", 318), ("clock_gettime", 228),
        ("clock_getres", 229), ("clock_nanosleep", 230), ("nanosleep", 35), ("gettimeofday", 96), ("time", 201), ("getrusage", 98),
        ("sysinfo", 99), ("uname", 63), ("getrlimit", 97), ("setrlimit", 160), ("getpriority", 140), ("prctl", 157), ("restart_syscall", 219),
        ("exit", 60), ("exit_group", 231),
        // Waiting and the descriptors it already holds (its connection, stdio, the parent's pidfd, wake-up pipes).
        ("epoll_create1", 291), ("epoll_ctl", 233), ("epoll_wait", 232), ("epoll_pwait", 281), ("epoll_pwait2", 441), ("poll", 7), ("ppoll", 271),
        ("select", 23), ("pselect6", 270), ("eventfd2", 290), ("pipe2", 293), ("dup", 32), ("dup2", 33), ("dup3", 292), ("fcntl", 72),
        ("timerfd_create", 283), ("timerfd_settime", 286), ("timerfd_gettime", 287),
        ("sendto", 44), ("recvfrom", 45), ("sendmsg", 46), ("recvmsg", 47), ("shutdown", 48), ("getsockopt", 55), ("setsockopt", 54),
        ("getsockname", 51), ("getpeername", 52),
    ];

    private const uint Clone = 56, Clone3 = 435, Ioctl = 16, Tgkill = 234, Kill = 62, Prlimit64 = 302, SchedSetaffinity = 203;

    /// <summary>ioctl requests the runtime makes: FIONREAD (bytes waiting), TCGETS (is it a terminal?), FIONBIO, FIOCLEX.</summary>
    private static readonly uint[] AllowedIoctls = [0x541B, 0x5401, 0x5421, 0x5451];

    [LibraryImport("libc", SetLastError = true)]
    private static partial int prctl(int option, nint arg2, nint arg3, nint arg4, nint arg5);

    [LibraryImport("libc", SetLastError = true)]
    private static partial long syscall(long number, long operation, long flags, SockFprog* program);

    [StructLayout(LayoutKind.Sequential)]
    private struct SockFilter(ushort code, byte jumpTrue, byte jumpFalse, uint k)
    {
        public ushort Code = code;
        public byte JumpTrue = jumpTrue;
        public byte JumpFalse = jumpFalse;
        public uint K = k;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct SockFprog
    {
        public ushort Length;
        public SockFilter* Filter;
    }

    /// <summary>
    /// Sets no_new_privs and installs the filter on every thread of the process (SECCOMP_FILTER_FLAG_TSYNC). Throws
    /// when the kernel refuses: a worker that cannot be confined must not serve.
    /// </summary>
    public static void Install()
    {
        const int prSetNoNewPrivs = 38;
        const long sysSeccomp = 317, setModeFilter = 1, filterFlagTsync = 1;
        if (prctl(prSetNoNewPrivs, 1, 0, 0, 0) != 0) throw new InvalidOperationException($"prctl(PR_SET_NO_NEW_PRIVS) failed: errno {Marshal.GetLastPInvokeError()}");
        var program = Build(Environment.ProcessId);
        fixed (SockFilter* filter = program)
        {
            var fprog = new SockFprog { Length = checked((ushort)program.Length), Filter = filter };
            var result = syscall(sysSeccomp, setModeFilter, filterFlagTsync, &fprog);
            if (result != 0)
                throw new InvalidOperationException(result > 0
                    ? $"seccomp: thread {result} could not take the filter"
                    : $"seccomp(SECCOMP_SET_MODE_FILTER) failed: errno {Marshal.GetLastPInvokeError()}");
        }
    }

    /// <summary>The BPF program. Every test is followed by its own return, so no jump is longer than a few instructions.</summary>
    private static SockFilter[] Build(int ownPid)
    {
        var program = new List<SockFilter>
        {
            Load(OffsetArch),
            new(JumpEqual, 1, 0, AuditArchX8664),
            ReturnWith(RetKillProcess),
            Load(OffsetNr),
            new(JumpGreaterOrEqual, 0, 1, X32SyscallBit), // the x32 ABI's numbers alias x86-64's: refuse them all
            ReturnWith(RetKillProcess),
        };
        foreach (var (_, number) in Allowed)
        {
            program.Add(new SockFilter(JumpEqual, 0, 1, number));
            program.Add(ReturnWith(RetAllow));
        }

        // clone only for threads: no new process can be made. glibc asks clone3 first and takes ENOSYS as "use clone".
        program.Add(new SockFilter(JumpEqual, 0, 4, Clone));
        program.Add(Load(OffsetArg0Low));
        program.Add(new SockFilter(JumpSet, 0, 1, CloneThread));
        program.Add(ReturnWith(RetAllow));
        program.Add(ReturnWith(RetKillProcess));
        program.Add(new SockFilter(JumpEqual, 0, 1, Clone3));
        program.Add(ReturnWith(RetErrno | Enosys));
        // Signals to this process only (arg 0 is its pid); resource limits and affinity of itself only (arg 0 is 0).
        AddArgumentCheck(program, Tgkill, OffsetArg0Low, [(uint)ownPid]);
        AddArgumentCheck(program, Kill, OffsetArg0Low, [(uint)ownPid]);
        AddArgumentCheck(program, Prlimit64, OffsetArg0Low, [0]);
        AddArgumentCheck(program, SchedSetaffinity, OffsetArg0Low, [0]); // the JIT runtime pins its new threads
        AddArgumentCheck(program, Ioctl, OffsetArg1Low, AllowedIoctls);
        program.Add(ReturnWith(RetKillProcess));
        return [.. program];
    }

    /// <summary>
    /// Allows <paramref name="number"/> when the argument word at <paramref name="offset"/> is one of
    /// <paramref name="values"/>; kills otherwise. Leaves the syscall number loaded for the tests that follow.
    /// </summary>
    private static void AddArgumentCheck(List<SockFilter> program, uint number, uint offset, uint[] values)
    {
        // jeq number: fall into the check, else skip it (load + one test-and-return per value + kill).
        program.Add(new SockFilter(JumpEqual, 0, checked((byte)(1 + values.Length * 2 + 1)), number));
        program.Add(Load(offset));
        foreach (var value in values)
        {
            program.Add(new SockFilter(JumpEqual, 0, 1, value));
            program.Add(ReturnWith(RetAllow));
        }

        program.Add(ReturnWith(RetKillProcess));
    }

    private static SockFilter Load(uint offset) => new(LoadWordAbsolute, 0, 0, offset);

    private static SockFilter ReturnWith(uint action) => new(Return, 0, 0, action);
}
