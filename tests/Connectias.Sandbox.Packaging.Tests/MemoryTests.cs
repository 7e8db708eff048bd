using System.IO.Compression;
using static Connectias.Sandbox.Packaging.Tests.TestPackages;

namespace Connectias.Sandbox.Packaging.Tests;

/// <summary>
/// Memory is measured as bytes allocated by the reading thread (deterministic, unlike timings):
/// reading may cost about the uncompressed size, and a bomb must cost almost nothing.
/// </summary>
[Collection("allocation measurements")]
public class MemoryTests
{
    [Fact]
    public void Reading_a_package_allocates_less_than_twice_its_uncompressed_size()
    {
        const int payload = 16 * 1024 * 1024;
        var path = Path.Combine(Path.GetTempPath(), $"connectias-memory-{Guid.NewGuid():N}.zip");
        File.WriteAllBytes(path, ValidWith(new RawEntry("payload.bin", HygieneTests.RandomBytes(payload))));
        try
        {
            var reader = new PackageReader();
            reader.Read(path); // warm up: JIT and static tables are not the package's cost
            var before = GC.GetAllocatedBytesForCurrentThread();
            var package = reader.Read(path);
            var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            Assert.True(allocated < 2 * package.UncompressedBytes,
                $"reading {package.UncompressedBytes} uncompressed bytes allocated {allocated}");
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void A_100_to_1_bomb_is_refused_before_it_is_inflated()
    {
        // ~150 MiB that deflates about 100:1: each KiB holds a few random bytes among zeros.
        var bomb = BuildBomb(150 * 1024 * 1024);
        var declared = 150L * 1024 * 1024;
        Assert.InRange(declared / bomb.Length, 40, 250);

        var before = GC.GetAllocatedBytesForCurrentThread();
        var error = Refusal(bomb);
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal(ErrorReason.CorruptedData, error.Reason);
        Assert.Contains("inflates to more than", error.Message);
        Assert.True(allocated < 4 * 1024 * 1024, $"refusing the bomb allocated {allocated} bytes");
    }

    [Fact]
    public void A_bomb_hidden_behind_a_small_declared_size_costs_only_the_declared_size()
    {
        var liar = DeclareSize(ValidWith(new RawEntry("bomb.bin", new byte[50 * 1024 * 1024])), "bomb.bin", 4096);
        var before = GC.GetAllocatedBytesForCurrentThread();
        var error = Refusal(liar);
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Contains("header lies about its size", error.Message);
        Assert.True(allocated < 4 * 1024 * 1024, $"refusing the lying entry allocated {allocated} bytes");
    }

    private static byte[] BuildBomb(int size)
    {
        var random = new Random(7);
        var chunk = new byte[1024];
        using var output = new MemoryStream();
        using (var archive = new ZipArchive(output, ZipArchiveMode.Create, leaveOpen: true))
        {
            foreach (var (name, content) in ValidFiles())
            {
                using var stream = archive.CreateEntry(name).Open();
                stream.Write(content);
            }

            using var bomb = archive.CreateEntry("bomb.bin", CompressionLevel.Fastest).Open();
            for (var written = 0; written < size; written += chunk.Length)
            {
                Array.Clear(chunk);
                for (var i = 0; i < 2; i++) chunk[random.Next(chunk.Length)] = (byte)random.Next(256);
                bomb.Write(chunk);
            }
        }

        return output.ToArray();
    }
}
