using System.Text;
using Connectias.Sandbox.V1;
using Google.Rpc;
using Grpc.Core;

namespace Connectias.Sandbox.Daemon.Tests;

/// <summary>Every SPEC reason a client can provoke, through the real daemon: status code and ErrorInfo.</summary>
[Collection("daemon")]
public class ApiErrorTests(SharedDaemon shared)
{
    private readonly DaemonProcess _daemon = shared.Daemon;

    internal static async Task<SandboxException> Refused(Func<Task> call, StatusCode status, string reason, string? pluginId = null)
    {
        var error = await Assert.ThrowsAsync<SandboxException>(call);
        var rpc = Assert.IsType<RpcException>(error.InnerException);
        Assert.Equal(status, rpc.StatusCode);
        var info = rpc.GetRpcStatus()!.GetDetail<ErrorInfo>();
        Assert.Equal("sandbox.connectias", info.Domain);
        Assert.Equal(reason, info.Reason);
        if (pluginId is not null) Assert.Equal(pluginId, info.Metadata["plugin_id"]);
        return error;
    }

    private async Task<PluginInfo> Load(string plugin, string id, string extraManifest = "")
    {
        using var client = _daemon.Client();
        return await client.LoadAsync(_daemon.Package(plugin, id, extraManifest));
    }

    private async Task<SandboxException> CallRefused(string id, string command, StatusCode status, string reason, TimeSpan? timeout = null)
    {
        using var client = _daemon.Client();
        return await Refused(() => client.ExecuteAsync(id, command, Encoding.UTF8.GetBytes("{}"), timeout), status, reason, id);
    }

    private async Task AssertTerminated(string id)
    {
        using var client = _daemon.Client();
        var info = await client.GetAsync(id);
        Assert.Equal(PluginState.Terminated, info.State);
        Assert.Equal(0, info.Pid);
        await Refused(() => client.ExecuteAsync(id, "run"), StatusCode.Unavailable, "PLUGIN_CRASHED", id);
    }

    [Fact]
    public async Task INVALID_SIGNATURE_for_an_unsigned_package()
    {
        using var client = _daemon.Client();
        var error = await Refused(() => client.LoadAsync(_daemon.Package("hello", "com.test.unsigned", sign: false)), StatusCode.PermissionDenied, "INVALID_SIGNATURE", "com.test.unsigned");
        Assert.Contains("not signed", error.Message);
    }

    [Fact]
    public async Task INVALID_SIGNATURE_for_a_key_the_daemon_does_not_trust()
    {
        using var client = _daemon.Client();
        using var stranger = Packaging.SigningKey.Generate(Packaging.SignatureAlgorithm.Rsa, 2048);
        var package = Packaging.PackageSigner.Sign(_daemon.Package("hello", "com.test.stranger", sign: false), stranger);
        await Refused(() => client.LoadAsync(package), StatusCode.PermissionDenied, "INVALID_SIGNATURE");
    }

    [Fact]
    public async Task CORRUPTED_DATA_for_bytes_that_are_not_a_package()
    {
        using var client = _daemon.Client();
        await Refused(() => client.LoadAsync(Encoding.UTF8.GetBytes("certainly not a zip")), StatusCode.InvalidArgument, "CORRUPTED_DATA");
        await Refused(() => client.LoadFromPathAsync("/nonexistent/plugin.zip"), StatusCode.InvalidArgument, "CORRUPTED_DATA");
    }

    [Fact]
    public async Task A_request_larger_than_a_package_at_its_limit_is_refused_before_the_daemon_reads_it_whole()
    {
        using var client = _daemon.Client();
        var oversized = new LoadPluginRequest { Package = Google.Protobuf.ByteString.CopyFrom(new byte[Packaging.PackageLimits.Default.MaxPackageBytes + 2 * 1024 * 1024]) };
        var refused = await Assert.ThrowsAsync<RpcException>(async () => await client.Raw.LoadPluginAsync(oversized));
        Assert.Equal(StatusCode.ResourceExhausted, refused.StatusCode);
        Assert.Equal(Packaging.PackageLimits.Default.MaxPackageBytes + 1024 * 1024, Hosting.DaemonOptions.MaxRequestBytes); // the package limit and a little
        await client.ListAsync(); // still serving
    }

    [Fact]
    public async Task A_path_that_is_empty_missing_unreadable_or_not_a_regular_file_is_refused_at_once_with_one_message()
    {
        using var client = _daemon.Client();
        var work = Directory.CreateTempSubdirectory("connectias-paths-").FullName;
        try
        {
            var fifo = Path.Combine(work, "package.fifo");
            using (var mkfifo = System.Diagnostics.Process.Start("mkfifo", [fifo])) await mkfifo.WaitForExitAsync();
            var empty = Path.Combine(work, "empty.zip");
            File.WriteAllBytes(empty, []);

            var emptyPath = await Refused(() => client.LoadFromPathAsync(""), StatusCode.InvalidArgument, "CORRUPTED_DATA");
            Assert.Contains("path is empty", emptyPath.Message);
            // A FIFO once held a thread for good (opening it waits for a writer); 20 of them must not stall the daemon.
            var messages = new List<string>();
            foreach (var path in Enumerable.Repeat(fifo, 20).Concat(["/nonexistent/plugin.zip", work, "/dev/zero", empty, "/root/../etc/shadow-does-not-exist"]))
                messages.Add((await Refused(() => client.LoadFromPathAsync(path), StatusCode.InvalidArgument, "CORRUPTED_DATA")).Message.Replace(path, "PATH", StringComparison.Ordinal));
            Assert.Single(messages.Distinct()); // nothing tells a caller which of these it was
            Assert.Contains("no regular, non-empty file", messages[0]);
            Assert.Equal(PluginState.Ready, (await Load("noop", "com.test.after-paths")).State);
            await client.UnloadAsync("com.test.after-paths");
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }

    [Fact]
    public async Task CORRUPTED_DATA_for_a_module_with_a_foreign_import() =>
        Assert.Contains("env.system", (await Refused(() => Load("foreign_import", "com.test.foreign"), StatusCode.InvalidArgument, "CORRUPTED_DATA", "com.test.foreign")).Message);

    [Fact]
    public Task UNSUPPORTED_VERSION_for_an_abi_this_host_does_not_implement() =>
        Refused(() => Load("hello", "com.test.future", ",\"abi_version\":2"), StatusCode.FailedPrecondition, "UNSUPPORTED_VERSION", "com.test.future");

    [Fact]
    public async Task PERMISSION_DENIED_for_a_permission_the_policy_does_not_grant()
    {
        var error = await Refused(() => Load("hello", "com.test.greedy", ",\"permissions\":[\"network\"]"), StatusCode.PermissionDenied, "PERMISSION_DENIED", "com.test.greedy");
        Assert.Equal("network", error.Metadata["permission"]);
    }

    [Fact]
    public async Task PERMISSION_DENIED_for_an_import_the_manifest_did_not_ask_for()
    {
        // The policy would grant storage, but the manifest does not ask for it: the module may not import it.
        var error = await Refused(() => Load("storage_import", "com.test.sneaky"), StatusCode.PermissionDenied, "PERMISSION_DENIED", "com.test.sneaky");
        Assert.Equal("storage", error.Metadata["permission"]);
    }

    [Fact]
    public Task DEPENDENCY_NOT_MET_for_a_dependency_that_is_not_loaded() =>
        Refused(() => Load("noop", "com.test.dependent", ",\"dependencies\":[\"com.test.absent\"]"), StatusCode.FailedPrecondition, "DEPENDENCY_NOT_MET", "com.test.dependent");

    [Fact]
    public async Task A_dependency_that_is_loaded_is_met()
    {
        await Load("noop", "com.test.base");
        Assert.Equal(PluginState.Ready, (await Load("noop", "com.test.derived", ",\"dependencies\":[\"com.test.base\"]")).State);
    }

    [Fact]
    public async Task INIT_FAILED_with_the_plugins_code_and_message()
    {
        var error = await Refused(() => Load("init_error", "com.test.initerror"), StatusCode.FailedPrecondition, "INIT_FAILED", "com.test.initerror");
        Assert.Equal("7", error.Metadata["plugin_code"]);
        Assert.Contains("missing api_key", error.Message);
    }

    [Fact]
    public async Task ALREADY_LOADED_for_a_second_load_of_the_same_id()
    {
        await Load("noop", "com.test.twice");
        await Refused(() => Load("noop", "com.test.twice"), StatusCode.AlreadyExists, "ALREADY_LOADED", "com.test.twice");
        using var client = _daemon.Client();
        Assert.Equal(PluginState.Ready, (await client.GetAsync("com.test.twice")).State); // the first one is untouched
    }

    [Fact]
    public async Task PLUGIN_NOT_FOUND_for_an_unknown_id()
    {
        using var client = _daemon.Client();
        await Refused(() => client.ExecuteAsync("com.test.nobody", "run"), StatusCode.NotFound, "PLUGIN_NOT_FOUND", "com.test.nobody");
        await Refused(() => client.GetAsync("com.test.nobody"), StatusCode.NotFound, "PLUGIN_NOT_FOUND");
        await Refused(() => client.UnloadAsync("com.test.nobody"), StatusCode.NotFound, "PLUGIN_NOT_FOUND");
    }

    [Fact]
    public async Task FUEL_EXHAUSTED_terminates_the_plugin()
    {
        await Load("infinite_loop", "com.test.spinner");
        var error = await CallRefused("com.test.spinner", "run", StatusCode.ResourceExhausted, "FUEL_EXHAUSTED");
        Assert.Equal("1000000", error.Metadata["limit"]);
        await AssertTerminated("com.test.spinner");
    }

    [Fact]
    public async Task MEMORY_LIMIT_EXCEEDED_terminates_the_plugin()
    {
        await Load("grow_bomb", "com.test.bomb", ",\"resource_limits\":{\"memory_bytes\":16777216}");
        var error = await CallRefused("com.test.bomb", "run", StatusCode.ResourceExhausted, "MEMORY_LIMIT_EXCEEDED");
        Assert.Equal("16777216", error.Metadata["limit"]);
        await AssertTerminated("com.test.bomb");
    }

    [Fact]
    public async Task MEMORY_LIMIT_EXCEEDED_at_load_for_a_huge_initial_memory() =>
        await Refused(() => Load("huge_memory", "com.test.huge"), StatusCode.ResourceExhausted, "MEMORY_LIMIT_EXCEEDED", "com.test.huge");

    [Fact]
    public async Task TIMEOUT_from_the_plugins_own_limit_terminates_it()
    {
        await Load("infinite_loop", "com.test.patient", ",\"resource_limits\":{\"timeout_ms\":300,\"fuel_per_call\":1000000000000}");
        var error = await CallRefused("com.test.patient", "run", StatusCode.DeadlineExceeded, "TIMEOUT");
        Assert.Equal("300", error.Metadata["limit"]);
        await AssertTerminated("com.test.patient");
    }

    [Fact]
    public async Task The_clients_deadline_ends_a_call_with_DEADLINE_EXCEEDED()
    {
        await Load("infinite_loop", "com.test.sleeper", ",\"resource_limits\":{\"fuel_per_call\":1000000000000}");
        using var client = _daemon.Client();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var error = await Assert.ThrowsAnyAsync<Exception>(() => client.ExecuteAsync("com.test.sleeper", "run", default, TimeSpan.FromMilliseconds(400)));
        var rpc = error as RpcException ?? error.InnerException as RpcException;
        Assert.Equal(StatusCode.DeadlineExceeded, rpc!.StatusCode);
        Assert.Equal(ErrorReason.Timeout, Assert.IsType<SandboxException>(error).Reason); // SPEC §8: a client deadline is TIMEOUT too
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5));
        // Never left spinning: either the worker stopped at the same deadline and the plugin was terminated,
        // or (on a busy machine) the deadline passed while the call still queued and it never ran.
        var info = await WaitForState(client, "com.test.sleeper", PluginState.Terminated);
        if (info.State == PluginState.Terminated) Assert.Equal("TIMEOUT", info.StateReason);
        else Assert.Equal((PluginState.Ready, 0UL), (info.State, info.Usage.Calls));
    }

    [Fact]
    public async Task INVALID_COMMAND_for_a_command_the_manifest_does_not_declare()
    {
        await Load("hello", "com.test.declared", ",\"permissions\":[\"storage\",\"system_info\"],\"commands\":[{\"name\":\"greet\"}]");
        await CallRefused("com.test.declared", "echo", StatusCode.InvalidArgument, "INVALID_COMMAND");
        using var client = _daemon.Client();
        Assert.Equal("Hello, {}!", (await client.ExecuteAsync("com.test.declared", "greet", "{}"u8.ToArray())).Output.ToStringUtf8());
    }

    [Fact]
    public async Task OUTPUT_TOO_LARGE_terminates_the_plugin()
    {
        await Load("giant_output", "com.test.talker");
        await CallRefused("com.test.talker", "run", StatusCode.ResourceExhausted, "OUTPUT_TOO_LARGE");
        await AssertTerminated("com.test.talker");
    }

    [Fact]
    public async Task PLUGIN_ERROR_carries_the_plugins_code_and_leaves_it_ready()
    {
        await Load("hello", "com.test.failing", ",\"permissions\":[\"storage\",\"system_info\"]");
        var error = await CallRefused("com.test.failing", "fail", StatusCode.Unknown, "PLUGIN_ERROR");
        Assert.Equal("42", error.Metadata["plugin_code"]);
        using var client = _daemon.Client();
        var info = await client.GetAsync("com.test.failing");
        Assert.Equal(PluginState.Ready, info.State);
        Assert.Equal(1UL, info.Usage.Failures);
    }

    [Fact]
    public async Task PLUGIN_TRAPPED_names_the_trap_and_terminates_the_plugin()
    {
        await Load("unreachable", "com.test.trap");
        Assert.Equal("unreachable", (await CallRefused("com.test.trap", "run", StatusCode.Internal, "PLUGIN_TRAPPED")).Metadata["trap"]);
        await AssertTerminated("com.test.trap");
    }

    [Fact]
    public async Task PLUGIN_TRAPPED_for_a_stack_overflow()
    {
        await Load("deep_recursion", "com.test.recursion");
        Assert.Equal("stack overflow", (await CallRefused("com.test.recursion", "run", StatusCode.Internal, "PLUGIN_TRAPPED")).Metadata["trap"]);
    }

    [Fact]
    public async Task PLUGIN_CRASHED_for_proc_exit()
    {
        await Load("proc_exit", "com.test.quitter");
        await CallRefused("com.test.quitter", "run", StatusCode.Unavailable, "PLUGIN_CRASHED");
        using var client = _daemon.Client();
        Assert.Equal(PluginState.Crashed, (await client.GetAsync("com.test.quitter")).State);
    }

    internal static async Task<PluginInfo> WaitForState(Client.SandboxClient client, string id, PluginState state)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (true)
        {
            var info = await client.GetAsync(id);
            if (info.State == state || clock.Elapsed > TimeSpan.FromSeconds(15)) return info;
            await Task.Delay(50);
        }
    }
}
