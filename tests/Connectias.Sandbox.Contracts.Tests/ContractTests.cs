using Connectias.Sandbox.Contracts;
using Connectias.Sandbox.V1;
using Google.Protobuf.Reflection;
using Google.Rpc;
using Grpc.Core;

namespace Connectias.Sandbox.Contracts.Tests;

/// <summary>The generated contracts say exactly what SPEC §4 names; clients elsewhere depend on it.</summary>
public class PublicApiContractTests
{
    private static readonly ServiceDescriptor Service = PluginHostReflection.Descriptor.FindTypeByName<ServiceDescriptor>("PluginHost");

    private static EnumDescriptor Enum(string name) => PluginHostReflection.Descriptor.FindTypeByName<EnumDescriptor>(name);

    [Fact]
    public void The_service_lives_in_the_spec_package() =>
        Assert.Equal("connectias.sandbox.v1.PluginHost", Service.FullName);

    [Theory]
    [InlineData("LoadPlugin", "LoadPluginRequest", "LoadPluginResponse", false)]
    [InlineData("Execute", "ExecuteRequest", "ExecuteResponse", false)]
    [InlineData("UnloadPlugin", "UnloadPluginRequest", "UnloadPluginResponse", false)]
    [InlineData("ListPlugins", "ListPluginsRequest", "ListPluginsResponse", false)]
    [InlineData("GetPlugin", "GetPluginRequest", "PluginInfo", false)]
    [InlineData("WatchEvents", "WatchEventsRequest", "Event", true)]
    public void Every_rpc_has_its_spec_shape(string name, string input, string output, bool serverStreaming)
    {
        var method = Service.FindMethodByName(name);
        Assert.NotNull(method);
        Assert.Equal(input, method.InputType.Name);
        Assert.Equal(output, method.OutputType.Name);
        Assert.Equal(serverStreaming, method.IsServerStreaming);
        Assert.False(method.IsClientStreaming);
    }

    [Fact]
    public void The_service_has_no_rpc_beyond_the_spec() => Assert.Equal(6, Service.Methods.Count);

    [Fact]
    public void Load_takes_a_path_or_the_package_bytes()
    {
        var oneof = LoadPluginRequest.Descriptor.Oneofs.Single();
        Assert.Equal("source", oneof.Name);
        Assert.Equal(["path", "package"], oneof.Fields.Select(f => f.Name));
        Assert.Equal(FieldType.String, oneof.Fields[0].FieldType);
        Assert.Equal(FieldType.Bytes, oneof.Fields[1].FieldType);
    }

    public static TheoryData<string, string> RequiredFields => new()
    {
        { "ExecuteRequest", "plugin_id command args" },
        { "ExecuteResponse", "output stats" },
        { "ExecutionStats", "fuel_consumed duration_us memory_bytes" },
        { "UnloadPluginRequest", "plugin_id" },
        { "UnloadPluginResponse", "report" },
        { "CleanupReport", "issues" },
        { "ListPluginsResponse", "plugins" },
        { "GetPluginRequest", "plugin_id" },
        { "WatchEventsRequest", "plugin_id" },
        { "PluginInfo", "plugin_id name version state granted_permissions limits signer_fingerprint pid usage" },
        { "PluginUsage", "calls failures fuel_consumed_total memory_bytes peak_memory_bytes worker_rss_bytes" },
        { "EffectiveLimits", "memory_bytes fuel_per_call timeout_ms storage_bytes" },
    };

    [Theory]
    [MemberData(nameof(RequiredFields))]
    public void Messages_carry_the_spec_fields(string message, string fields)
    {
        var descriptor = PluginHostReflection.Descriptor.FindTypeByName<MessageDescriptor>(message);
        Assert.NotNull(descriptor);
        foreach (var field in fields.Split(' ')) Assert.NotNull(descriptor.FindFieldByName(field));
    }

    [Fact]
    public void Plugin_states_are_the_spec_states() =>
        Assert.Equal(["PLUGIN_STATE_UNSPECIFIED", "LOADING", "READY", "TERMINATED", "UNLOADED", "CRASHED"],
            Enum("PluginState").Values.Select(v => v.Name));

    [Fact]
    public void Cleanup_issues_are_the_spec_issues() =>
        Assert.Equal(["CLEANUP_ISSUE_KIND_UNSPECIFIED", "RESOURCE_LEAK", "MEMORY_NOT_FREED", "NETWORK_CONNECTION_OPEN", "AUDIT_LOG_FAILED"],
            Enum("CleanupIssueKind").Values.Select(v => v.Name));

    // AUDIT_LOG_FAILED is the one reason the proto's enum cannot list: proto enum values share their package's scope,
    // and CleanupIssueKind has that name already. It travels, like every reason, as ErrorInfo.reason's string.
    [Fact]
    public void The_proto_error_reasons_are_exactly_the_reasons_the_daemon_uses() =>
        Assert.Equal(ErrorReasons.All.Select(r => r.WireName()).Where(n => n != "AUDIT_LOG_FAILED").Order(),
            Enum("ErrorReason").Values.Select(v => v.Name).Where(n => n != "ERROR_REASON_UNSPECIFIED").Order());
}

public class ErrorStatusTests
{
    // SPEC §4, typed out from its table rather than derived from the code under test.
    public static TheoryData<string, StatusCode> SpecTable => new()
    {
        { "INVALID_SIGNATURE", StatusCode.PermissionDenied },
        { "CORRUPTED_DATA", StatusCode.InvalidArgument },
        { "UNSUPPORTED_VERSION", StatusCode.FailedPrecondition },
        { "PERMISSION_DENIED", StatusCode.PermissionDenied },
        { "RESOURCE_EXHAUSTED", StatusCode.ResourceExhausted },
        { "DEPENDENCY_NOT_MET", StatusCode.FailedPrecondition },
        { "INIT_FAILED", StatusCode.FailedPrecondition },
        { "ALREADY_LOADED", StatusCode.AlreadyExists },
        { "PLUGIN_NOT_FOUND", StatusCode.NotFound },
        { "FUEL_EXHAUSTED", StatusCode.ResourceExhausted },
        { "MEMORY_LIMIT_EXCEEDED", StatusCode.ResourceExhausted },
        { "TIMEOUT", StatusCode.DeadlineExceeded },
        { "NETWORK_TIMEOUT", StatusCode.DeadlineExceeded },
        { "INVALID_COMMAND", StatusCode.InvalidArgument },
        { "SECURITY_VIOLATION", StatusCode.PermissionDenied },
        { "OUTPUT_TOO_LARGE", StatusCode.ResourceExhausted },
        { "PLUGIN_ERROR", StatusCode.Unknown },
        { "PLUGIN_TRAPPED", StatusCode.Internal },
        { "PLUGIN_CRASHED", StatusCode.Unavailable },
        { "QUEUE_FULL", StatusCode.ResourceExhausted },
        { "AUDIT_LOG_FAILED", StatusCode.Unavailable },
    };

    [Theory]
    [MemberData(nameof(SpecTable))]
    public void Each_reason_maps_to_its_spec_status_and_back(string wireName, StatusCode expected)
    {
        Assert.True(ErrorReasons.TryParse(wireName, out var reason));
        var error = new SandboxException(reason, "what happened", new Dictionary<string, string> { ["plugin_id"] = "com.example.x", ["limit"] = "5" });

        var rpc = ErrorStatus.ToRpcException(error);
        Assert.Equal(expected, rpc.StatusCode);
        Assert.Equal("what happened", rpc.Status.Detail);

        var info = rpc.GetRpcStatus()!.GetDetail<Google.Rpc.ErrorInfo>();
        Assert.Equal("sandbox.connectias", info.Domain);
        Assert.Equal(wireName, info.Reason);
        Assert.Equal("com.example.x", info.Metadata["plugin_id"]);

        var back = ErrorStatus.FromRpcException(rpc)!;
        Assert.Equal(reason, back.Reason);
        Assert.Equal("5", back.Metadata["limit"]);
    }

    [Fact]
    public void The_table_covers_every_reason() => Assert.Equal(ErrorReasons.All.Count, SpecTable.Count);

    [Fact]
    public void A_status_without_sandbox_error_info_is_not_a_sandbox_error() =>
        Assert.Null(ErrorStatus.FromRpcException(new RpcException(new Grpc.Core.Status(StatusCode.Unavailable, "connection refused"))));
}

public class WorkerContractTests
{
    [Fact]
    public void The_worker_protocol_has_the_lifecycle_requests_and_the_broker_traffic()
    {
        var request = Worker.V1.WorkerReflection.Descriptor.FindTypeByName<MessageDescriptor>("WorkerRequest");
        Assert.Equal(["load", "execute", "cleanup", "status", "cancel", "broker_reply", "compile"], request.Oneofs[0].Fields.Select(f => f.Name));
        var reply = Worker.V1.WorkerReflection.Descriptor.FindTypeByName<MessageDescriptor>("WorkerReply");
        Assert.Equal(["load", "execute", "cleanup", "status", "broker_call", "compile"], reply.Oneofs[0].Fields.Select(f => f.Name));
        Assert.Empty(Worker.V1.WorkerReflection.Descriptor.Services); // frames over one connection, not gRPC
    }
}
