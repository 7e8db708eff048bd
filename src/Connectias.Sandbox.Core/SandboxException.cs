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
