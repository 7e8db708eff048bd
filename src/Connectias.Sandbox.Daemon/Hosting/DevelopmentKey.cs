using Connectias.Sandbox.Packaging;

namespace Connectias.Sandbox.Daemon.Hosting;

/// <summary>
/// A local development signing key (mode 0600) whose public half the daemon trusts, so a newcomer can sign
/// and load a plugin at once. <c>connectias sign</c> without --key uses the same key.
/// </summary>
public static class DevelopmentKey
{
    /// <summary>Creates the key on first use, writes its public half into the trust store; returns its fingerprint.</summary>
    public static string Ensure(DaemonOptions options)
    {
        var keyPath = SandboxPaths.DevelopmentKey(options.StateDir);
        SigningKey key;
        if (File.Exists(keyPath))
        {
            key = SigningKey.FromPem(File.ReadAllText(keyPath));
        }
        else
        {
            key = SigningKey.Generate(SignatureAlgorithm.Ec);
            using var stream = new FileStream(keyPath, new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite });
            using var writer = new StreamWriter(stream);
            writer.Write(key.ExportPrivateKeyPem());
        }

        using (key)
        {
            File.WriteAllText(Path.Combine(options.ResolvedTrustDir, SandboxPaths.DevelopmentKeyTrustFile), key.ExportPublicKeyPem() + "\n");
            return key.Fingerprint;
        }
    }
}
