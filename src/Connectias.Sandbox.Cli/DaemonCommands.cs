using System.CommandLine;
using System.Text;
using Connectias.Sandbox.Audit;
using Connectias.Sandbox.Client;
using Connectias.Sandbox.V1;

namespace Connectias.Sandbox.Cli;

/// <summary>The commands that talk to connectias-sandboxd over its socket, and the offline audit check.</summary>
internal static class DaemonCommands
{
    private static readonly Option<string?> Socket = new("--socket", "-s")
    {
        Description = "the daemon's Unix socket (default: the default daemon's, ~/.local/state/connectias-sandbox/run/sandboxd.sock)",
        Recursive = true,
    };

    private static readonly Option<string?> Address = new("--address")
    {
        Description = "a daemon's TCP listener instead of a socket: https://HOST:PORT with --tls-cert, --tls-key and --tls-ca, "
                      + "or http://HOST:PORT for one started with --tcp-insecure",
        Recursive = true,
    };

    private static readonly Option<string?> TlsCertificate = new("--tls-cert")
    {
        Description = "with an https:// --address: this client's certificate (PEM), issued by a CA in the daemon's --tls-client-ca",
        Recursive = true,
    };

    private static readonly Option<string?> TlsKey = new("--tls-key") { Description = "the private key of --tls-cert (unencrypted PEM)", Recursive = true };

    private static readonly Option<string?> TlsCa = new("--tls-ca")
    {
        Description = "the CA certificate(s) (PEM) the daemon's certificate must chain to; only these are trusted",
        Recursive = true,
    };

    public static IEnumerable<Command> Create(TextWriter output, TextWriter error, Func<Stream> input)
    {
        yield return Load(output);
        yield return Exec(output, error, input);
        yield return Ps(output);
        yield return Unload(output);
        yield return Events(output);
        yield return AuditCommand(output, error);
    }

    private static SandboxClient Connect(ParseResult parse)
    {
        if (parse.GetValue(Address) is not { } text) return SandboxClient.Connect(parse.GetValue(Socket));
        if (parse.GetValue(Socket) is not null) throw new UsageException("give --socket or --address, not both");
        if (!Uri.TryCreate(text, UriKind.Absolute, out var address) || address.Scheme is not ("http" or "https") || address.AbsolutePath != "/")
            throw new UsageException($"--address '{text}' is not a daemon address such as https://127.0.0.1:7700");
        var tls = new[] { parse.GetValue(TlsCertificate), parse.GetValue(TlsKey), parse.GetValue(TlsCa) };
        if (tls.All(file => file is null)) return SandboxClient.ConnectAddress(address);
        if (tls.Any(file => file is null)) throw new UsageException("give --tls-cert, --tls-key and --tls-ca together");
        if (address.Scheme != "https") throw new UsageException($"--tls-cert, --tls-key and --tls-ca need an https:// --address, not '{text}'");
        return SandboxClient.ConnectAddress(address, SandboxTls.FromPemFiles(tls[0]!, tls[1]!, tls[2]!));
    }

    private static Command Load(TextWriter output)
    {
        var file = new Argument<FileInfo>("FILE") { Description = "plugin package (.zip)" };
        var byPath = new Option<bool>("--by-path") { Description = "send the path for the daemon to read instead of the bytes" };
        var replace = new Option<bool>("--replace") { Description = "upgrade a loaded plugin of the same id without a gap (its calls in flight finish, then it unloads)" };
        var command = new Command("load", "Load a plugin package into the daemon; prints the plugin once it is READY.") { file, byPath, replace, Socket, Address, TlsCertificate, TlsKey, TlsCa };
        command.SetAction(async (parse, cancellation) =>
        {
            var path = parse.GetValue(file)!.FullName;
            if (Directory.Exists(path)) throw new IOException($"{path} is a directory; load takes a package file (make one with 'connectias pack {path}')");
            using var client = Connect(parse);
            var plugin = parse.GetValue(byPath)
                ? await client.LoadFromPathAsync(path, cancellation, parse.GetValue(replace))
                : await client.LoadAsync(await File.ReadAllBytesAsync(path, cancellation), cancellation, parse.GetValue(replace));
            output.WriteLine($"loaded {plugin.PluginId} {plugin.Version}: {plugin.State}, pid {plugin.Pid}, signer {(plugin.SignerFingerprint.Length > 0 ? plugin.SignerFingerprint : "(unsigned)")}");
            output.WriteLine($"permissions: {(plugin.GrantedPermissions.Count == 0 ? "(none)" : string.Join(", ", plugin.GrantedPermissions))}; " +
                             $"limits: memory {plugin.Limits.MemoryBytes} B, fuel {plugin.Limits.FuelPerCall}/call, timeout {plugin.Limits.TimeoutMs} ms");
            return ExitCodes.Success;
        });
        return command;
    }

    private static Command Exec(TextWriter output, TextWriter error, Func<Stream> input)
    {
        var id = new Argument<string>("ID") { Description = "plugin id" };
        var name = new Argument<string>("COMMAND") { Description = "command name" };
        var args = new Argument<string?>("ARGS")
        {
            Description = "arguments, passed as UTF-8 bytes (JSON by convention) exactly as given, a leading '@' included; '-' reads them from standard input",
            Arity = ArgumentArity.ZeroOrOne,
        };
        var argsFile = new Option<FileInfo?>("--args-file") { Description = "read the arguments from FILE, any size and any bytes" };
        var timeout = new Option<int?>("--timeout") { Description = "client deadline in milliseconds; when it passes: TIMEOUT, exit 1" };
        var stats = new Option<bool>("--stats") { Description = "also print fuel, duration and memory to stderr" };
        var command = new Command("exec", "Run a command in a loaded plugin and print its output.") { id, name, args, argsFile, timeout, stats, Socket, Address, TlsCertificate, TlsKey, TlsCa };
        command.SetAction(async (parse, cancellation) =>
        {
            var bytes = await ArgumentBytesAsync(parse.GetValue(args), parse.GetValue(argsFile), input, cancellation);
            using var client = Connect(parse);
            var response = await client.ExecuteAsync(parse.GetValue(id)!, parse.GetValue(name)!, bytes,
                parse.GetValue(timeout) is { } ms ? TimeSpan.FromMilliseconds(ms) : null, cancellation);
            var text = response.Output.ToStringUtf8();
            output.Write(text);
            if (text.Length > 0 && !text.EndsWith('\n')) output.WriteLine();
            if (parse.GetValue(stats))
                error.WriteLine($"fuel {response.Stats.FuelConsumed}, {response.Stats.DurationUs} µs, memory {response.Stats.MemoryBytes} B");
            return ExitCodes.Success;
        });
        return command;
    }

    /// <summary>The call's argument bytes: ARGS as UTF-8, standard input for '-', or a file (for what a shell cannot pass, ~128 KiB and up).</summary>
    private static async Task<byte[]> ArgumentBytesAsync(string? args, FileInfo? file, Func<Stream> input, CancellationToken cancellation)
    {
        if (file is not null && args is not null) throw new UsageException("give ARGS or --args-file, not both");
        if (file is not null) return await File.ReadAllBytesAsync(file.FullName, cancellation);
        if (args != "-") return Encoding.UTF8.GetBytes(args ?? "");
        using var buffer = new MemoryStream();
        await using (var stdin = input()) await stdin.CopyToAsync(buffer, cancellation);
        return buffer.ToArray();
    }

    private static Command Ps(TextWriter output)
    {
        var all = new Option<bool>("--all", "-a") { Description = "also list recently unloaded plugins" };
        var command = new Command("ps", "List the daemon's live plugins with state, worker pid and usage.") { all, Socket, Address, TlsCertificate, TlsKey, TlsCa };
        command.SetAction(async (parse, cancellation) =>
        {
            using var client = Connect(parse);
            var plugins = (await client.ListAsync(cancellation)).Where(p => parse.GetValue(all) || p.State != PluginState.Unloaded);
            output.WriteLine($"{"ID",-32} {"VERSION",-10} {"STATE",-10} {"PID",7} {"CALLS",7} {"FAIL",5} {"MEMORY",10} {"RSS",10}  SIGNER");
            foreach (var plugin in plugins)
            {
                output.WriteLine($"{plugin.PluginId,-32} {plugin.Version,-10} {plugin.State,-10} {plugin.Pid,7} {plugin.Usage.Calls,7} {plugin.Usage.Failures,5} " +
                                 $"{plugin.Usage.MemoryBytes,10} {plugin.Usage.WorkerRssBytes,10}  {(plugin.SignerFingerprint.Length > 12 ? plugin.SignerFingerprint[..12] : "(unsigned)")}" +
                                 (plugin.StateReason.Length > 0 ? $"  ({plugin.StateReason})" : ""));
            }

            return ExitCodes.Success;
        });
        return command;
    }

    private static Command Unload(TextWriter output)
    {
        var id = new Argument<string>("ID") { Description = "plugin id" };
        var cascade = new Option<bool>("--cascade") { Description = "first unload the loaded plugins that depend on it (else refused, naming them)" };
        var command = new Command("unload", "Unload a plugin and print its cleanup report.") { id, cascade, Socket, Address, TlsCertificate, TlsKey, TlsCa };
        command.SetAction(async (parse, cancellation) =>
        {
            using var client = Connect(parse);
            // A terminated or crashed plugin has no worker left to run plugin_cleanup in: say so, not "not exported".
            var before = await client.GetAsync(parse.GetValue(id)!, cancellation);
            var report = await client.UnloadAsync(parse.GetValue(id)!, cancellation, parse.GetValue(cascade));
            var cleanup = report.PluginCleanupCalled ? $"returned {report.PluginCleanupCode}"
                : before.State is PluginState.Terminated or PluginState.Crashed ? $"not run (the plugin was already {before.State}: {before.StateReason})"
                : "not exported";
            output.WriteLine($"unloaded {report.PluginId} in {report.DurationUs / 1000.0:F1} ms; plugin_cleanup {cleanup}");
            foreach (var issue in report.Issues) output.WriteLine($"issue: {issue.Kind}: {issue.Detail}");
            if (report.Issues.Count == 0) output.WriteLine("cleanup verified: no issues");
            return ExitCodes.Success;
        });
        return command;
    }

    private static Command Events(TextWriter output)
    {
        var plugin = new Option<string?>("--plugin", "-p") { Description = "only this plugin's events" };
        var command = new Command("events", "Follow lifecycle changes, violations and audit records until interrupted.") { plugin, Socket, Address, TlsCertificate, TlsKey, TlsCa };
        command.SetAction(async (parse, cancellation) =>
        {
            using var client = Connect(parse);
            await foreach (var item in client.WatchEventsAsync(parse.GetValue(plugin), cancellation))
            {
                var what = item.PayloadCase switch
                {
                    Event.PayloadOneofCase.StateChanged => $"state {item.StateChanged.Previous} -> {item.StateChanged.Current}" +
                                                           (item.StateChanged.Reason.Length > 0 ? $" ({item.StateChanged.Reason}: {item.StateChanged.Message})" : ""),
                    Event.PayloadOneofCase.Violation => $"violation {item.Violation.Reason}: {item.Violation.Message}",
                    Event.PayloadOneofCase.Audit => $"audit #{item.Audit.Seq} {item.Audit.Event} {item.Audit.DetailsJson}",
                    _ => "unknown event",
                };
                output.WriteLine($"{item.Time.ToDateTime():yyyy-MM-ddTHH:mm:ss.fffZ} #{item.Seq} {(item.PluginId.Length > 0 ? item.PluginId : "-")} {what}");
                output.Flush();
            }

            return ExitCodes.Success;
        });
        return command;
    }

    private static Command AuditCommand(TextWriter output, TextWriter error)
    {
        var stateDir = new Option<DirectoryInfo?>("--state-dir") { Description = "the daemon's state directory (default: the default daemon's)" };
        var verify = new Command("verify", "Check the audit log's hash chain: exit 0 when intact, 1 naming the first bad record.") { stateDir };
        verify.SetAction(parse =>
        {
            var directory = parse.GetValue(stateDir)?.FullName ?? SandboxPaths.DefaultStateDirectory();
            var path = Path.Combine(SandboxPaths.AuditDirectory(directory), AuditLog.FileName);
            var result = AuditVerifier.Verify(path);
            if (result.Intact)
            {
                output.WriteLine($"audit log intact: {result.Records} records in {path}");
                return ExitCodes.Success;
            }

            error.WriteLine(result.BadLine is null
                ? $"audit log broken: {result.Problem}"
                : $"audit log broken at line {result.BadLine}{(result.BadSeq is { } seq ? $" (record seq {seq})" : "")}: {result.Problem}; {result.Records} records before it are intact");
            return ExitCodes.Refused;
        });
        return new Command("audit", "Audit log tools.") { verify };
    }
}
