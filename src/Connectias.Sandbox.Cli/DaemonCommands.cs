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

    public static IEnumerable<Command> Create(TextWriter output, TextWriter error)
    {
        yield return Load(output);
        yield return Exec(output, error);
        yield return Ps(output);
        yield return Unload(output);
        yield return Events(output);
        yield return AuditCommand(output, error);
    }

    private static SandboxClient Connect(ParseResult parse) => SandboxClient.Connect(parse.GetValue(Socket));

    private static Command Load(TextWriter output)
    {
        var file = new Argument<FileInfo>("FILE") { Description = "plugin package (.zip)" };
        var byPath = new Option<bool>("--by-path") { Description = "send the path for the daemon to read instead of the bytes" };
        var command = new Command("load", "Load a plugin package into the daemon; prints the plugin once it is READY.") { file, byPath, Socket };
        command.SetAction(async (parse, cancellation) =>
        {
            using var client = Connect(parse);
            var path = parse.GetValue(file)!.FullName;
            var plugin = parse.GetValue(byPath)
                ? await client.LoadFromPathAsync(path, cancellation)
                : await client.LoadAsync(await File.ReadAllBytesAsync(path, cancellation), cancellation);
            output.WriteLine($"loaded {plugin.PluginId} {plugin.Version}: {plugin.State}, pid {plugin.Pid}, signer {(plugin.SignerFingerprint.Length > 0 ? plugin.SignerFingerprint : "(unsigned)")}");
            output.WriteLine($"permissions: {(plugin.GrantedPermissions.Count == 0 ? "(none)" : string.Join(", ", plugin.GrantedPermissions))}; " +
                             $"limits: memory {plugin.Limits.MemoryBytes} B, fuel {plugin.Limits.FuelPerCall}/call, timeout {plugin.Limits.TimeoutMs} ms");
            return ExitCodes.Success;
        });
        return command;
    }

    private static Command Exec(TextWriter output, TextWriter error)
    {
        var id = new Argument<string>("ID") { Description = "plugin id" };
        var name = new Argument<string>("COMMAND") { Description = "command name" };
        var args = new Argument<string?>("ARGS") { Description = "arguments, passed as UTF-8 bytes (JSON by convention)", Arity = ArgumentArity.ZeroOrOne };
        var timeout = new Option<int?>("--timeout") { Description = "client deadline in milliseconds" };
        var stats = new Option<bool>("--stats") { Description = "also print fuel, duration and memory to stderr" };
        var command = new Command("exec", "Run a command in a loaded plugin and print its output.") { id, name, args, timeout, stats, Socket };
        command.SetAction(async (parse, cancellation) =>
        {
            using var client = Connect(parse);
            var response = await client.ExecuteAsync(parse.GetValue(id)!, parse.GetValue(name)!, Encoding.UTF8.GetBytes(parse.GetValue(args) ?? ""),
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

    private static Command Ps(TextWriter output)
    {
        var command = new Command("ps", "List the daemon's plugins with state, worker and usage.") { Socket };
        command.SetAction(async (parse, cancellation) =>
        {
            using var client = Connect(parse);
            var plugins = await client.ListAsync(cancellation);
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
        var command = new Command("unload", "Unload a plugin and print its cleanup report.") { id, Socket };
        command.SetAction(async (parse, cancellation) =>
        {
            using var client = Connect(parse);
            var report = await client.UnloadAsync(parse.GetValue(id)!, cancellation);
            output.WriteLine($"unloaded {report.PluginId} in {report.DurationUs / 1000.0:F1} ms; plugin_cleanup " +
                             (report.PluginCleanupCalled ? $"returned {report.PluginCleanupCode}" : "not exported"));
            foreach (var issue in report.Issues) output.WriteLine($"issue: {issue.Kind}: {issue.Detail}");
            if (report.Issues.Count == 0) output.WriteLine("cleanup verified: no issues");
            return ExitCodes.Success;
        });
        return command;
    }

    private static Command Events(TextWriter output)
    {
        var plugin = new Option<string?>("--plugin", "-p") { Description = "only this plugin's events" };
        var command = new Command("events", "Follow lifecycle changes, violations and audit records until interrupted.") { plugin, Socket };
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
