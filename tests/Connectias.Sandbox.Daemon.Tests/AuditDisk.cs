using System.Diagnostics;
using System.Globalization;

namespace Connectias.Sandbox.Daemon.Tests;

/// <summary>
/// A state directory whose <c>audit/</c> is a small tmpfs of its own, so a test can fill the audit log's disk for
/// real (ENOSPC from the kernel, part-way through a record) and free it again. Mounting needs root, as the test
/// machines run; the tmpfs is unmounted and the directory removed on dispose.
/// </summary>
internal sealed class AuditDisk : IDisposable
{
    private static readonly int PageSize = Environment.SystemPageSize;

    public AuditDisk(int bytes = 256 * 1024)
    {
        StateDir = Directory.CreateTempSubdirectory("connectias-audit-disk-").FullName;
        Directory.CreateDirectory(AuditDirectory);
        var mount = Run("mount", "-t", "tmpfs", "-o", $"size={bytes},mode=0700", "tmpfs", AuditDirectory);
        if (mount.ExitCode != 0)
        {
            Directory.Delete(StateDir, recursive: true);
            throw new InvalidOperationException($"these tests mount a tmpfs and need root: mount said {mount.Error}");
        }
    }

    public string StateDir { get; }
    public string AuditDirectory => Path.Combine(StateDir, "audit");
    public string AuditPath => Path.Combine(AuditDirectory, "audit.jsonl");
    private string FillerPath => Path.Combine(AuditDirectory, "filler");

    public long AuditLength => new FileInfo(AuditPath).Length;

    /// <summary>Bytes still free on the tmpfs, as the kernel counts them (whole pages).</summary>
    public long FreeBytes => new DriveInfo(AuditDirectory).AvailableFreeSpace;

    /// <summary>
    /// Fills the disk so that exactly <paramref name="slack"/> bytes can still be appended to the audit log: every free
    /// page is taken by a filler file, and the log itself is padded with one failed call of <paramref name="fail"/>
    /// whose command name has just the length that leaves <paramref name="slack"/> bytes of its last page. A
    /// PLUGIN_EXECUTE_FAILED record is <paramref name="recordBase"/> bytes plus its seq's digits plus the command's length.
    /// </summary>
    public async Task FillLeavingAsync(int slack, long recordBase, Func<string, Task> fail)
    {
        using (var filler = new FileStream(FillerPath, FileMode.Create, FileAccess.Write, FileShare.None, 0))
        {
            var page = new byte[PageSize];
            try
            {
                while (true) filler.Write(page);
            }
            catch (IOException)
            {
                // ENOSPC: every page is taken
            }

            filler.SetLength(filler.Length - PageSize); // one page back, for the padding record
        }

        var room = (PageSize - AuditLength % PageSize) % PageSize + PageSize;
        var command = (int)(room - slack - recordBase - Digits(NextSeq()));
        await fail(new string('x', command));
        Assert.Equal(0, FreeBytes);
        Assert.Equal(PageSize - slack, AuditLength % PageSize);
    }

    /// <summary>The size of a PLUGIN_EXECUTE_FAILED record without its seq's digits and its command, from one just written for <paramref name="command"/>.</summary>
    public async Task<long> MeasureFailedCallRecordAsync(Func<string, Task> fail, string command = "probe")
    {
        var seq = NextSeq();
        var before = AuditLength;
        await fail(command);
        return AuditLength - before - command.Length - Digits(seq);
    }

    public void Free() => File.Delete(FillerPath);

    private long NextSeq() => File.ReadLines(AuditPath).LongCount() + 1;

    private static int Digits(long value) => value.ToString(CultureInfo.InvariantCulture).Length;

    private static (int ExitCode, string Error) Run(string program, params string[] args)
    {
        using var process = Process.Start(new ProcessStartInfo(program, args) { RedirectStandardError = true, RedirectStandardOutput = true })!;
        var error = process.StandardError.ReadToEnd();
        process.WaitForExit();
        return (process.ExitCode, error);
    }

    public void Dispose()
    {
        if (Run("umount", AuditDirectory).ExitCode != 0) Run("umount", "-l", AuditDirectory); // busy: detach it now, freed once unused
        Directory.Delete(StateDir, recursive: true);
    }
}
