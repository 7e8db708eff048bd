using Wasmtime;

namespace Connectias.Sandbox.Runtime;

/// <summary>A function signature of the ABI, written as WebAssembly text for error messages.</summary>
public sealed record AbiSignature(ValueKind[] Parameters, ValueKind[] Results)
{
    public bool Matches(IReadOnlyList<ValueKind> parameters, IReadOnlyList<ValueKind> results) =>
        parameters.SequenceEqual(Parameters) && results.SequenceEqual(Results);

    public override string ToString() => Describe(Parameters, Results);

    public static string Describe(IReadOnlyList<ValueKind> parameters, IReadOnlyList<ValueKind> results)
    {
        var text = "(func";
        if (parameters.Count > 0) text += " (param " + string.Join(' ', parameters.Select(Name)) + ")";
        if (results.Count > 0) text += " (result " + string.Join(' ', results.Select(Name)) + ")";
        return text + ")";
    }

    private static string Name(ValueKind kind) => kind switch
    {
        ValueKind.Int32 => "i32",
        ValueKind.Int64 => "i64",
        ValueKind.Float32 => "f32",
        ValueKind.Float64 => "f64",
        ValueKind.V128 => "v128",
        _ => kind.ToString().ToLowerInvariant(),
    };
}

/// <summary>Plugin ABI v1 (SPEC §2) as data: the one place that says what a plugin exports and may import.</summary>
public static class AbiContract
{
    public const string ImportModule = "connectias";
    public const string WasiModule = "wasi_snapshot_preview1";
    public const string MemoryExport = "memory";

    private static readonly ValueKind I32 = ValueKind.Int32;
    private static readonly ValueKind I64 = ValueKind.Int64;

    public static readonly AbiSignature Alloc = new([I32], [I32]);
    public static readonly AbiSignature Execute = new([I32, I32, I32, I32], [I32]);
    public static readonly AbiSignature Init = new([I32, I32], [I32]);
    public static readonly AbiSignature Cleanup = new([], [I32]);
    public static readonly AbiSignature Free = new([I32, I32], []);
    public static readonly AbiSignature Initialize = new([], []);

    /// <summary>Function exports: name, signature, required.</summary>
    public static readonly IReadOnlyList<(string Name, AbiSignature Signature, bool Required)> FunctionExports =
    [
        ("connectias_alloc", Alloc, true),
        ("plugin_execute", Execute, true),
        ("plugin_init", Init, false),
        ("plugin_cleanup", Cleanup, false),
        ("connectias_free", Free, false),
        ("_initialize", Initialize, false),
    ];

    /// <summary>Imports from module <c>connectias</c>: signature and the permission each needs (null: none).</summary>
    public static readonly IReadOnlyDictionary<string, (AbiSignature Signature, Permission? Needs)> Imports =
        new Dictionary<string, (AbiSignature, Permission?)>
        {
            ["output"] = (new([I32, I32], []), null),
            ["error"] = (new([I32, I32], []), null),
            ["log"] = (new([I32, I32, I32], []), null),
            ["storage_get"] = (new([I32, I32], [I64]), Permission.Storage),
            ["storage_set"] = (new([I32, I32, I32, I32], [I32]), Permission.Storage),
            ["storage_delete"] = (new([I32, I32], [I32]), Permission.Storage),
            ["system_info"] = (new([], [I64]), Permission.SystemInfo),
            ["http_request"] = (new([I32, I32], [I64]), Permission.Network),
        };
}
