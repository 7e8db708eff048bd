using Connectias.Sandbox.Packaging;

namespace Connectias.Sandbox.Cli;

/// <summary>
/// The local development signing key: STATE/dev-signing.key (mode 0600) with its public half in
/// STATE/trust, where a daemon with the default state directory finds it. The daemon creates the same
/// key on its first start; whichever comes first creates it. For development only: production
/// daemons run with --no-dev-key and their own trust store.
/// </summary>
internal static class DevelopmentKey
{
    public static SigningKey LoadOrCreate(TextWriter output)
    {
        var state = SandboxPaths.DefaultStateDirectory();
        var keyPath = SandboxPaths.DevelopmentKey(state);
        if (File.Exists(keyPath)) return SigningKey.FromPem(File.ReadAllText(keyPath));

        Directory.CreateDirectory(state, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var key = SigningKey.Generate(SignatureAlgorithm.Ec);
        FileOutput.WritePrivate(keyPath, key.ExportPrivateKeyPem());
        var trust = SandboxPaths.TrustDirectory(state);
        Directory.CreateDirectory(trust);
        File.WriteAllText(Path.Combine(trust, SandboxPaths.DevelopmentKeyTrustFile), key.ExportPublicKeyPem() + "\n");
        output.WriteLine($"created the local development key {keyPath} ({key.Fingerprint}), trusted in {trust}");
        return key;
    }
}
