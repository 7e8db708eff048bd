using System.CommandLine;
using System.Text;
using Connectias.Sandbox.Packaging;

namespace Connectias.Sandbox.Cli;

/// <summary>The offline commands: keygen, pack, sign, verify, inspect. None of them needs the daemon.</summary>
internal static class PackageCommands
{
    public static IEnumerable<Command> Create(TextWriter output)
    {
        yield return Keygen(output);
        yield return Pack(output);
        yield return Sign(output);
        yield return Verify(output);
        yield return Inspect(output);
    }

    private static Command Keygen(TextWriter output)
    {
        var algorithm = new Option<string>("--algorithm", "-a")
        {
            Description = "ec (ECDSA P-256, the default) or rsa (PKCS#1 v1.5 SHA-256)",
            DefaultValueFactory = _ => "ec",
        };
        algorithm.AcceptOnlyFromAmong("ec", "rsa");
        var bits = new Option<int>("--bits") { Description = "RSA key size; at least 2048", DefaultValueFactory = _ => 3072 };
        bits.Validators.Add(result =>
        {
            if (result.GetValueOrDefault<int>() < TrustStore.MinRsaBits) result.AddError($"--bits must be at least {TrustStore.MinRsaBits}");
        });
        var prefix = new Option<string>("--out", "-o")
        {
            Description = "writes PREFIX.key (PKCS#8 PEM, mode 0600) and PREFIX.pub (PEM PUBLIC KEY)",
            DefaultValueFactory = _ => "signing",
        };
        var command = new Command("keygen", "Create a signing key pair. Put the .pub file into the daemon's trust directory.")
        {
            algorithm, bits, prefix,
        };
        command.SetAction(parse =>
        {
            var kind = parse.GetValue(algorithm) == "rsa" ? SignatureAlgorithm.Rsa : SignatureAlgorithm.Ec;
            var keyPath = parse.GetValue(prefix) + ".key";
            var publicPath = parse.GetValue(prefix) + ".pub";
            foreach (var path in new[] { keyPath, publicPath })
                if (File.Exists(path)) throw new IOException($"'{path}' exists; refusing to overwrite a key");

            using var key = SigningKey.Generate(kind, parse.GetValue(bits));
            FileOutput.WritePrivate(keyPath, key.ExportPrivateKeyPem());
            FileOutput.WriteAtomically(publicPath, Encoding.ASCII.GetBytes(key.ExportPublicKeyPem() + "\n"), overwrite: false);
            output.WriteLine($"private key: {keyPath} (keep it secret)");
            output.WriteLine($"public key:  {publicPath}");
            output.WriteLine($"fingerprint: {key.Fingerprint}");
            return ExitCodes.Success;
        });
        return command;
    }

    private static Command Pack(TextWriter output)
    {
        var directory = new Argument<DirectoryInfo>("DIR") { Description = "directory holding plugin.json, the module and any other files" };
        var outFile = new Option<string?>("--out", "-o") { Description = "package file to write (default: <id>-<version>.zip)" };
        var force = new Option<bool>("--force") { Description = "overwrite an existing file" };
        var command = new Command("pack", "Pack a directory into an unsigned plugin package, checking it and its module as the daemon would " +
                                          "(all but the policy). Files named in DIR/.connectiasignore stay out.")
        {
            directory, outFile, force,
        };
        command.SetAction(parse =>
        {
            var bytes = PackageWriter.PackDirectory(parse.GetValue(directory)!.FullName);
            var package = new PackageReader().Read(bytes); // refuse to produce anything the daemon would refuse
            var manifest = package.Manifest;
            Runtime.PackageModuleCheck.Check(manifest.Id, package.Module, manifest.Permissions, manifest.ResourceLimits);
            var target = parse.GetValue(outFile) ?? $"{package.Manifest.Id}-{package.Manifest.Version}.zip";
            FileOutput.WriteAtomically(target, bytes, parse.GetValue(force));
            output.WriteLine($"packed {package.Manifest.Id} {package.Manifest.Version}: {package.Entries.Count} entries, {bytes.Length} bytes -> {target}");
            return ExitCodes.Success;
        });
        return command;
    }

    private static Command Sign(TextWriter output)
    {
        var file = new Argument<FileInfo>("FILE") { Description = "package to sign" };
        var keyFile = new Option<FileInfo?>("--key", "-k") { Description = "PEM private key (from 'connectias keygen' or openssl); default: the local development key, which a default local daemon trusts" };
        var outFile = new Option<string?>("--out", "-o") { Description = "write the signed package here instead of replacing FILE" };
        var command = new Command("sign", "Sign a package, adding META-INF/SIGNATURE.EC or META-INF/SIGNATURE.RSA.")
        {
            file, keyFile, outFile,
        };
        command.SetAction(parse =>
        {
            var source = parse.GetValue(file)!.FullName;
            using var key = parse.GetValue(keyFile) is { } explicitKey
                ? SigningKey.FromPem(File.ReadAllText(explicitKey.FullName))
                : DevelopmentKey.LoadOrCreate(output);
            var signed = PackageSigner.Sign(File.ReadAllBytes(source), key);
            var target = parse.GetValue(outFile) ?? source;
            FileOutput.WriteAtomically(target, signed, overwrite: true);
            var signatureFile = key.Algorithm == SignatureAlgorithm.Rsa ? PackagePaths.RsaSignatureFile : PackagePaths.EcSignatureFile;
            output.WriteLine($"signed {target}: {signatureFile} by {key.Fingerprint}");
            return ExitCodes.Success;
        });
        return command;
    }

    private static Command Verify(TextWriter output)
    {
        var file = new Argument<FileInfo>("FILE") { Description = "package to verify" };
        var trust = new Option<DirectoryInfo>("--trust", "-t") { Description = "trust store directory (public keys, revoked.txt)", Required = true };
        var command = new Command("verify", "Check a package as the daemon does: hygiene, manifest, versions and signature. " +
                                            "Exit 0 printing the signer's fingerprint, or 1 with the SPEC reason.")
        {
            file, trust,
        };
        command.SetAction(parse =>
        {
            var package = ReadForVerification(parse.GetValue(file)!.FullName);
            var store = TrustStore.Load(parse.GetValue(trust)!.FullName);
            var signer = SignatureVerifier.Verify(package, store);
            output.WriteLine($"valid: {package.Manifest.Id} {package.Manifest.Version}");
            output.WriteLine($"signer: {signer.Fingerprint} ({signer.Algorithm?.ToString().ToUpperInvariant()}, {Path.GetFileName(signer.KeyFile)})");
            return ExitCodes.Success;
        });
        return command;
    }

    private static Command Inspect(TextWriter output)
    {
        var file = new Argument<FileInfo>("FILE") { Description = "package to describe" };
        var trust = new Option<DirectoryInfo?>("--trust", "-t") { Description = "also check the signature against this trust store" };
        var signedBytes = new Option<string?>("--signed-bytes") { Description = "write the exact bytes a signature covers to this file (for external signing tools)" };
        var command = new Command("inspect", "Show a package's manifest, entries and signatures.") { file, trust, signedBytes };
        command.SetAction(parse =>
        {
            var package = new PackageReader().Read(parse.GetValue(file)!.FullName);
            Describe(package, output);
            if (parse.GetValue(signedBytes) is { } bytesPath)
            {
                using var stream = new MemoryStream();
                package.WriteSignedBytes(stream);
                FileOutput.WriteAtomically(bytesPath, stream.ToArray(), overwrite: true);
                output.WriteLine($"signed bytes: {stream.Length} bytes -> {bytesPath}");
            }

            if (parse.GetValue(trust) is { } trustDirectory)
            {
                var store = TrustStore.Load(trustDirectory.FullName);
                foreach (var warning in store.Warnings) output.WriteLine($"trust store warning: {warning}");
                var signer = SignatureVerifier.Verify(package, store);
                output.WriteLine($"signer:      {signer.Fingerprint} (trusted)");
            }

            return ExitCodes.Success;
        });
        return command;
    }

    /// <summary>Reading plus the compatibility check, as the daemon's load phase does.</summary>
    private static PluginPackage ReadForVerification(string path)
    {
        var package = new PackageReader().Read(path);
        ManifestParser.CheckCompatibility(package.Manifest, SemanticVersion.Parse(CoreVersion.Current), CoreVersion.SupportedAbiVersions);
        return package;
    }

    private static void Describe(PluginPackage package, TextWriter output)
    {
        var manifest = package.Manifest;
        output.WriteLine($"id:          {manifest.Id}");
        output.WriteLine($"name:        {manifest.Name}");
        output.WriteLine($"version:     {manifest.Version}");
        if (manifest.Author is not null) output.WriteLine($"author:      {manifest.Author}");
        if (manifest.Description is not null) output.WriteLine($"description: {manifest.Description}");
        output.WriteLine($"abi:         {manifest.AbiVersion}");
        if (manifest.MinCoreVersion is not null || manifest.MaxCoreVersion is not null)
            output.WriteLine($"core:        {manifest.MinCoreVersion?.ToString() ?? "*"} .. {manifest.MaxCoreVersion?.ToString() ?? "*"}");
        output.WriteLine($"entry point: {manifest.EntryPoint} ({package.Module.Length} bytes)");
        output.WriteLine($"permissions: {(manifest.Permissions.Count == 0 ? "(none)" : string.Join(", ", manifest.Permissions.Select(p => p.WireName())))}");
        if (manifest.AllowedHosts.Count > 0) output.WriteLine($"hosts:       {string.Join(", ", manifest.AllowedHosts)}");
        var limits = manifest.ResourceLimits;
        output.WriteLine($"limits:      memory {limits.MemoryBytes} B, fuel {limits.FuelPerCall}/call, timeout {limits.TimeoutMs} ms, storage {limits.StorageBytes} B");
        if (manifest.Commands is not null) output.WriteLine($"commands:    {string.Join(", ", manifest.Commands.Select(c => c.Name))}");
        if (manifest.Dependencies.Count > 0) output.WriteLine($"depends on:  {string.Join(", ", manifest.Dependencies)}");
        output.WriteLine($"entries:     {package.Entries.Count} ({package.UncompressedBytes} bytes uncompressed)");
        foreach (var entry in package.Entries) output.WriteLine($"  {entry.Content.Length,10}  {entry.Path}");
        output.WriteLine($"signed sha256: {Convert.ToHexStringLower(package.ComputeSignedDigest())}");
        if (package.Signatures.Count == 0) output.WriteLine("signatures:  (none)");
        foreach (var signature in package.Signatures)
            output.WriteLine($"signature:   {signature.EntryPath} ({signature.Algorithm.ToString().ToUpperInvariant()}{(signature.Problem is null ? "" : ", " + signature.Problem)})");
        foreach (var unknown in package.UnknownSignatureFiles) output.WriteLine($"ignored:     {unknown} (unknown signature kind)");
    }
}
