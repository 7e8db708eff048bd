using System.Security.Cryptography;

namespace Connectias.Sandbox.Packaging.Tests;

/// <summary>A temporary trust-store directory, removed when the test ends.</summary>
internal sealed class TrustDirectory : IDisposable
{
    public TrustDirectory()
    {
        Path = Directory.CreateTempSubdirectory("connectias-trust-").FullName;
    }

    public string Path { get; }

    public string Add(string fileName, string pemOrText)
    {
        var file = System.IO.Path.Combine(Path, fileName);
        File.WriteAllText(file, pemOrText);
        return file;
    }

    public void Add(string fileName, byte[] bytes) => File.WriteAllBytes(System.IO.Path.Combine(Path, fileName), bytes);

    public void Trust(SigningKey key, string fileName = "key.pub") => Add(fileName, key.ExportPublicKeyPem());

    public void Revoke(params string[] fingerprints) => Add(TrustStore.RevocationFile, "# revoked keys\n" + string.Join("\n", fingerprints) + "\n");

    public TrustStore Load() => TrustStore.Load(Path);

    public void Dispose() => Directory.Delete(Path, recursive: true);

    public static string Fingerprint(AsymmetricAlgorithm key) => TrustStore.Fingerprint(key.ExportSubjectPublicKeyInfo());
}
