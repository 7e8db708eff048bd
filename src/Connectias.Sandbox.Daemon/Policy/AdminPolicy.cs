using System.Text.Json;
using Connectias.Sandbox.Packaging;

namespace Connectias.Sandbox.Daemon.Policy;

public enum RestartPolicy
{
    Never,
    OnFailure,
}

/// <summary>What the daemon does while its audit log cannot be written (<c>audit_failure</c>, SPEC §5).</summary>
public enum AuditFailureMode
{
    /// <summary>Loads and executions are refused with AUDIT_LOG_FAILED until a record can be written again.</summary>
    Refuse,

    /// <summary>Plugins keep being served; every record that could not be written is counted.</summary>
    Continue,
}

/// <summary>What the administrator grants one plugin.</summary>
public sealed record PolicyGrant(
    IReadOnlySet<Permission> Permissions,
    IReadOnlyList<HostPattern> AllowedHosts,
    IReadOnlyList<HostPattern> AllowPrivateHosts,
    ResourceLimits Limits,
    RestartPolicy Restart)
{
    /// <summary>The policy's <c>config</c> for the plugin, merged over its manifest's into <c>ctx.config</c>.</summary>
    public PluginConfig Config { get; init; } = PluginConfig.Empty;

    /// <summary>
    /// Whether the plugin's brokered HTTP requests carry the W3C <c>traceparent</c> of the daemon's span for them
    /// (<c>propagate_trace_context</c>). Off by default: the trace id would tie the plugin's traffic to the caller's
    /// request for every server the plugin talks to.
    /// </summary>
    public bool PropagateTraceContext { get; init; }
}

/// <summary>
/// The administrator's policy file (SPEC §5). Everything is optional; without a file the built-in
/// policy grants <c>storage</c> and <c>system_info</c> (never <c>network</c>) with the SPEC's default limits.
/// A plugin's permissions are its <c>plugins</c> entry if present, else <c>default</c>; limits are merged
/// key by key over the defaults.
/// </summary>
public sealed class AdminPolicy
{
    public static readonly AdminPolicy BuiltIn = new(
        new PolicyGrant(new HashSet<Permission> { Permission.Storage, Permission.SystemInfo }, [], [], ResourceLimits.Defaults, RestartPolicy.Never),
        new Dictionary<string, PolicyGrant>(), "built-in", AuditFailureMode.Refuse);

    private AdminPolicy(PolicyGrant defaults, Dictionary<string, PolicyGrant> plugins, string source, AuditFailureMode auditFailure)
    {
        Default = defaults;
        Plugins = plugins;
        Source = source;
        AuditFailure = auditFailure;
    }

    public PolicyGrant Default { get; }
    public IReadOnlyDictionary<string, PolicyGrant> Plugins { get; }
    public string Source { get; }

    /// <summary>The top-level <c>audit_failure</c>: <c>refuse</c> (the default) or <c>continue</c>.</summary>
    public AuditFailureMode AuditFailure { get; }

    public PolicyGrant For(string pluginId) => Plugins.TryGetValue(pluginId, out var grant) ? grant : Default;

    /// <summary>Reads a policy file; a malformed one is an error naming the field, so the daemon does not start on it.</summary>
    public static AdminPolicy Load(string path)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(File.ReadAllBytes(path), new JsonDocumentOptions { AllowDuplicateProperties = false, CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
        }
        catch (Exception e) when (e is JsonException or IOException or UnauthorizedAccessException)
        {
            throw new InvalidDataException($"policy {path}: {e.Message}");
        }

        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object) throw new InvalidDataException($"policy {path}: must be a JSON object");
            RefuseUnknownKeys(root, TopLevelKeys, "", path);
            var defaults = root.TryGetProperty("default", out var defaultElement)
                ? ParseGrant(defaultElement, BuiltIn.Default, "default", path)
                : BuiltIn.Default;
            var plugins = new Dictionary<string, PolicyGrant>(StringComparer.Ordinal);
            if (root.TryGetProperty("plugins", out var pluginsElement))
            {
                if (pluginsElement.ValueKind != JsonValueKind.Object) throw new InvalidDataException($"policy {path}: 'plugins' must be an object keyed by plugin id");
                foreach (var plugin in pluginsElement.EnumerateObject())
                {
                    if (!ManifestParser.IsValidPluginId(plugin.Name)) throw new InvalidDataException($"policy {path}: '{plugin.Name}' is not a plugin id");
                    plugins[plugin.Name] = ParseGrant(plugin.Value, defaults, $"plugins.{plugin.Name}", path);
                }
            }

            var auditFailure = root.TryGetProperty("audit_failure", out var a)
                ? (a.ValueKind == JsonValueKind.String ? a.GetString() : null) switch
                {
                    "refuse" => AuditFailureMode.Refuse,
                    "continue" => AuditFailureMode.Continue,
                    _ => throw new InvalidDataException($"policy {path}: 'audit_failure' must be \"refuse\" or \"continue\""),
                }
                : AuditFailureMode.Refuse;
            return new AdminPolicy(defaults, plugins, path, auditFailure);
        }
    }

    private static PolicyGrant ParseGrant(JsonElement element, PolicyGrant inherited, string where, string path)
    {
        if (element.ValueKind != JsonValueKind.Object) throw new InvalidDataException($"policy {path}: '{where}' must be an object");
        RefuseUnknownKeys(element, GrantKeys, where + ".", path);
        var permissions = element.TryGetProperty("permissions", out var p)
            ? Strings(p, $"{where}.permissions", path).Select(name => Permissions.TryParse(name, out var permission)
                ? permission
                : throw new InvalidDataException($"policy {path}: '{where}.permissions' has unknown permission '{name}'")).ToHashSet()
            : inherited.Permissions;
        var limits = inherited.Limits;
        if (element.TryGetProperty("limits", out var l))
        {
            if (l.ValueKind != JsonValueKind.Object) throw new InvalidDataException($"policy {path}: '{where}.limits' must be an object");
            RefuseUnknownKeys(l, ResourceLimits.Fields.Select(f => f.Name).ToHashSet(), where + ".limits.", path);
            foreach (var field in ResourceLimits.Fields)
            {
                var value = Number(l, field.Name, field.Get(limits), where, path);
                if (value > field.Maximum)
                    throw new InvalidDataException($"policy {path}: '{where}.limits.{field.Name}' is {value}; this daemon allows at most {field.Maximum}");
                limits = field.With(limits, value);
            }
        }

        var restart = inherited.Restart;
        if (element.TryGetProperty("restart", out var r))
        {
            restart = (r.ValueKind == JsonValueKind.String ? r.GetString() : null) switch
            {
                "never" => RestartPolicy.Never,
                "on-failure" => RestartPolicy.OnFailure,
                _ => throw new InvalidDataException($"policy {path}: '{where}.restart' must be \"never\" or \"on-failure\""),
            };
        }

        return new PolicyGrant(permissions,
            element.TryGetProperty("allowed_hosts", out var hosts) ? Hosts(hosts, $"{where}.allowed_hosts", path) : inherited.AllowedHosts,
            element.TryGetProperty("allow_private_hosts", out var privateHosts) ? Hosts(privateHosts, $"{where}.allow_private_hosts", path) : inherited.AllowPrivateHosts,
            limits, restart)
        {
            Config = element.TryGetProperty("config", out var config) ? Config(config, $"{where}.config", path) : inherited.Config,
            PropagateTraceContext = element.TryGetProperty("propagate_trace_context", out var propagate)
                ? Boolean(propagate, $"{where}.propagate_trace_context", path)
                : inherited.PropagateTraceContext,
        };
    }

    private static readonly HashSet<string> TopLevelKeys = ["default", "plugins", "audit_failure"];
    private static readonly HashSet<string> GrantKeys = ["permissions", "allowed_hosts", "allow_private_hosts", "limits", "restart", "config", "propagate_trace_context"];

    /// <summary>A key the daemon does not know stops it: a misspelt key must not silently weaken the policy (SPEC §5).</summary>
    private static void RefuseUnknownKeys(JsonElement element, IReadOnlySet<string> known, string prefix, string path)
    {
        foreach (var member in element.EnumerateObject())
        {
            if (known.Contains(member.Name)) continue;
            throw new InvalidDataException($"policy {path}: unknown key '{prefix}{member.Name}'; known here: {string.Join(", ", known.Order(StringComparer.Ordinal))}");
        }
    }

    private static PluginConfig Config(JsonElement element, string where, string path) =>
        element.ValueKind == JsonValueKind.Object ? PluginConfig.FromObject(element) : throw new InvalidDataException($"policy {path}: '{where}' must be an object");

    private static bool Boolean(JsonElement element, string where, string path) => element.ValueKind switch
    {
        JsonValueKind.True => true,
        JsonValueKind.False => false,
        _ => throw new InvalidDataException($"policy {path}: '{where}' must be true or false"),
    };

    private static List<string> Strings(JsonElement element, string where, string path)
    {
        if (element.ValueKind != JsonValueKind.Array || element.EnumerateArray().Any(item => item.ValueKind != JsonValueKind.String))
            throw new InvalidDataException($"policy {path}: '{where}' must be an array of strings");
        return element.EnumerateArray().Select(item => item.GetString()!).ToList();
    }

    private static List<HostPattern> Hosts(JsonElement element, string where, string path) =>
        Strings(element, where, path).Select(text => HostPattern.TryParse(text, out var pattern, out var problem)
            ? pattern!
            : throw new InvalidDataException($"policy {path}: '{where}' entry '{text}' {problem}")).ToList();

    private static long Number(JsonElement limits, string key, long fallback, string where, string path)
    {
        if (!limits.TryGetProperty(key, out var value)) return fallback;
        if (value.ValueKind != JsonValueKind.Number || !value.TryGetInt64(out var number) || number < 0)
            throw new InvalidDataException($"policy {path}: '{where}.limits.{key}' must be a whole number of at least 0");
        return number;
    }
}
