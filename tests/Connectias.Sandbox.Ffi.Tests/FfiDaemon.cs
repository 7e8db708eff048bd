using System.IO.Compression;
using System.Text;

namespace Connectias.Sandbox.Ffi.Tests;

/// <summary>A daemon for FFI tests and the package files a C host loads from disk.</summary>
public sealed class FfiDaemon : IDisposable
{
    /// <summary>hello imports storage and system_info; com.test.ffi.hung has a 1 s timeout, so a hung call ends soon.</summary>
    public const string Policy = """
        {
          "default": { "permissions": ["storage", "system_info"] },
          "plugins": { "com.test.ffi.hung": { "permissions": ["storage", "system_info"], "limits": { "timeout_ms": 1000 } } }
        }
        """;

    /// <summary>A manifest fragment declaring only greet, so any other command is INVALID_COMMAND.</summary>
    public const string GreetOnly = ""","commands":[{"name":"greet","description":"says hello"}]""";

    private readonly DirectoryInfo _files = Directory.CreateTempSubdirectory("connectias-ffi-packages-");

    public FfiDaemon() : this(new DaemonStartInfo { PolicyJson = Policy })
    {
    }

    /// <summary>A daemon started some other way (on a chosen state directory); internal, as a class fixture may have one public constructor.</summary>
    internal FfiDaemon(DaemonStartInfo start) => Daemon = DaemonProcess.Start(start);

    public DaemonProcess Daemon { get; }

    /// <summary>The environment of a host that finds this daemon through $CONNECTIAS_SANDBOX_SOCKET.</summary>
    public (string, string?)[] Environment => [("CONNECTIAS_SANDBOX_SOCKET", Daemon.SocketPath)];

    /// <summary>hello imports storage and system_info, so its manifest must ask for them.</summary>
    public const string HelloPermissions = ""","permissions":["storage","system_info"]""";

    /// <summary>A signed hello package for <paramref name="id"/>, written to a file; returns its path.</summary>
    public string Hello(string id, string extraManifest = "") => Write(id, Daemon.Package("hello", id, HelloPermissions + extraManifest));

    /// <summary>A hello package signed by the trusted key, then one byte of its manifest changed (the name hello becomes iello).</summary>
    public string Tampered(string id) => Write(id + "-tampered", Tamper(Daemon.Package("hello", id, HelloPermissions)));

    /// <summary>A hello package signed by a key the daemon does not trust.</summary>
    public string Untrusted(string id)
    {
        using var stranger = Packaging.SigningKey.Generate(Packaging.SignatureAlgorithm.Ec);
        return Write(id + "-untrusted", SamplePlugins.Package("hello", id, stranger, HelloPermissions));
    }

    /// <summary>A path in this fixture's directory where no file is.</summary>
    public string Missing(string name) => Path.Combine(_files.FullName, name + ".zip");

    public string Write(string name, byte[] package)
    {
        var path = Path.Combine(_files.FullName, name + ".zip");
        File.WriteAllBytes(path, package);
        return path;
    }

    private static byte[] Tamper(byte[] signed)
    {
        using var stream = new MemoryStream();
        stream.Write(signed);
        using (var zip = new ZipArchive(stream, ZipArchiveMode.Update, leaveOpen: true))
        {
            var manifest = zip.GetEntry("plugin.json")!;
            byte[] content;
            using (var reader = manifest.Open())
            using (var copy = new MemoryStream())
            {
                reader.CopyTo(copy);
                content = copy.ToArray();
            }

            var at = Encoding.UTF8.GetString(content).IndexOf("\"hello\"", StringComparison.Ordinal) + 1;
            content[at] ^= 0x01; // still valid JSON, so only the signature can tell
            manifest.Delete();
            using var writer = zip.CreateEntry("plugin.json").Open();
            writer.Write(content);
        }

        return stream.ToArray();
    }

    public void Dispose()
    {
        Daemon.Dispose();
        _files.Delete(recursive: true);
    }
}
