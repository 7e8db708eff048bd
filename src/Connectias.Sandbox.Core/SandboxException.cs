namespace Connectias.Sandbox;

/// <summary>
/// A refusal or failure with one SPEC reason, a message meant for a person (which entry, which rule,
/// which limit) and the metadata keys of SPEC §4 (<c>plugin_id</c>, <c>limit</c>, <c>used</c>,
/// <c>plugin_code</c>, <c>permission</c>, ...).
/// </summary>
public class SandboxException : Exception
{
    public SandboxException(ErrorReason reason, string message, IReadOnlyDictionary<string, string>? metadata = null,
        Exception? inner = null)
        : base(message, inner)
    {
        Reason = reason;
        Metadata = metadata ?? new Dictionary<string, string>();
    }

    public ErrorReason Reason { get; }

    public IReadOnlyDictionary<string, string> Metadata { get; }

    public override string ToString() => $"{Reason.WireName()}: {Message}";
}

/// <summary>The ErrorInfo metadata of SPEC §4: always <c>plugin_id</c>, plus the keys a reason needs.</summary>
public static class ErrorMetadata
{
    public static Dictionary<string, string> For(string pluginId, params (string Key, string Value)[] entries)
    {
        var metadata = new Dictionary<string, string> { ["plugin_id"] = pluginId };
        foreach (var (key, value) in entries) metadata[key] = value;
        return metadata;
    }

    /// <summary>The same error with <c>plugin_id</c> in its metadata, when it lacks one and the id is known.</summary>
    public static SandboxException WithPluginId(SandboxException error, string pluginId)
    {
        if (error.Metadata.ContainsKey("plugin_id") || pluginId.Length == 0) return error;
        var metadata = new Dictionary<string, string>(error.Metadata) { ["plugin_id"] = pluginId };
        return new SandboxException(error.Reason, error.Message, metadata, error.InnerException);
    }
}
