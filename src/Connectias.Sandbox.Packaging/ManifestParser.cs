using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Connectias.Sandbox.Packaging;

/// <summary>
/// Parses and validates <c>plugin.json</c>. Unknown fields are ignored (SPEC §1); a known field with the
/// wrong type or value, a duplicated key, or invalid UTF-8 is <c>CORRUPTED_DATA</c> naming the field.
/// </summary>
public static partial class ManifestParser
{
    public const int MaxIdLength = 128;

    [GeneratedRegex(@"^[a-z][a-z0-9_-]*(\.[a-z0-9_-]+)+$", RegexOptions.CultureInvariant)]
    private static partial Regex IdPattern();

    public static bool IsValidPluginId(string id) => id.Length <= MaxIdLength && IdPattern().IsMatch(id);

    public static PluginManifest Parse(ReadOnlySpan<byte> utf8Json)
    {
        // A UTF-8 byte order mark is tolerated; editors on some systems write one.
        if (utf8Json.StartsWith((ReadOnlySpan<byte>)[0xEF, 0xBB, 0xBF])) utf8Json = utf8Json[3..];

        // Validated up front: JsonDocument defers string decoding, so bad bytes would surface later.
        if (!System.Text.Unicode.Utf8.IsValid(utf8Json)) throw Corrupt("is not valid UTF-8 JSON: invalid UTF-8 bytes");

        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(utf8Json.ToArray(), new JsonDocumentOptions
            {
                // Two "permissions" keys would let two readers of one manifest disagree.
                AllowDuplicateProperties = false,
                MaxDepth = 16,
            });
        }
        catch (JsonException e)
        {
            throw Corrupt($"is not valid UTF-8 JSON: {e.Message}");
        }

        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object) throw Corrupt("must be a JSON object");

            var id = RequiredString(root, "id");
            if (!IsValidPluginId(id))
            {
                throw Corrupt($"field 'id' ('{Shorten(id)}') must be a reverse-domain id matching " +
                              $"^[a-z][a-z0-9_-]*(\\.[a-z0-9_-]+)+$ of at most {MaxIdLength} characters, e.g. com.example.weather");
            }

            var name = RequiredString(root, "name");
            if (name.Trim().Length == 0) throw Corrupt("field 'name' must not be empty");

            var versionText = RequiredString(root, "version");
            var version = ParseVersion(versionText, "version");

            return new PluginManifest
            {
                Id = id,
                Name = name,
                Version = version,
                Author = OptionalString(root, "author"),
                Description = OptionalString(root, "description"),
                AbiVersion = (int)OptionalInteger(root, "abi_version", 1, 1, int.MaxValue),
                MinCoreVersion = OptionalString(root, "min_core_version") is { } min ? ParseVersion(min, "min_core_version") : null,
                MaxCoreVersion = OptionalString(root, "max_core_version") is { } max ? ParseVersion(max, "max_core_version") : null,
                EntryPoint = ParseEntryPoint(OptionalString(root, "entry_point")),
                Permissions = ParsePermissions(root),
                AllowedHosts = ParseAllowedHosts(root),
                ResourceLimits = ParseLimits(root),
                Commands = ParseCommands(root),
                Dependencies = ParseDependencies(root, id),
                Config = ParseConfig(root),
            };
        }
    }

    /// <summary>
    /// Whether this host can run the plugin at all: its ABI version and its core-version range.
    /// Throws <c>UNSUPPORTED_VERSION</c> saying which bound is violated.
    /// </summary>
    public static void CheckCompatibility(PluginManifest manifest, SemanticVersion coreVersion, IReadOnlySet<int> supportedAbiVersions)
    {
        var metadata = new Dictionary<string, string> { ["plugin_id"] = manifest.Id };
        if (!supportedAbiVersions.Contains(manifest.AbiVersion))
        {
            throw new SandboxException(ErrorReason.UnsupportedVersion,
                $"plugin {manifest.Id} needs plugin ABI version {manifest.AbiVersion}; this host implements " +
                $"{string.Join(", ", supportedAbiVersions.Order())}", metadata);
        }

        if (manifest.MinCoreVersion is { } min && coreVersion.CompareTo(min) < 0)
        {
            throw new SandboxException(ErrorReason.UnsupportedVersion,
                $"plugin {manifest.Id} needs core version {min} or newer; this host is {coreVersion}", metadata);
        }

        if (manifest.MaxCoreVersion is { } max && coreVersion.CompareTo(max) > 0)
        {
            throw new SandboxException(ErrorReason.UnsupportedVersion,
                $"plugin {manifest.Id} supports core versions up to {max}; this host is {coreVersion}", metadata);
        }
    }

    private static string ParseEntryPoint(string? entryPoint)
    {
        if (entryPoint is null) return PluginManifest.DefaultEntryPoint;
        var problem = PackagePaths.Problem(entryPoint);
        if (problem is not null) throw Corrupt($"field 'entry_point' ('{Shorten(entryPoint)}') {problem}");
        var normalized = PackagePaths.Normalize(entryPoint);
        if (normalized.EndsWith('/') || PackagePaths.IsSignatureFile(normalized) || normalized == PluginManifest.FileName)
            throw Corrupt($"field 'entry_point' ('{Shorten(entryPoint)}') must name the module file, not a directory, the manifest or a signature");
        return normalized;
    }

    private static IReadOnlyList<Permission> ParsePermissions(JsonElement root)
    {
        var permissions = new List<Permission>();
        foreach (var text in OptionalStringArray(root, "permissions"))
        {
            if (!Permissions.TryParse(text, out var permission))
            {
                throw Corrupt($"field 'permissions' has unknown permission '{Shorten(text)}'; " +
                              "known permissions are network, storage and system_info");
            }

            if (!permissions.Contains(permission)) permissions.Add(permission);
        }

        return permissions;
    }

    private static IReadOnlyList<HostPattern> ParseAllowedHosts(JsonElement root)
    {
        var hosts = new List<HostPattern>();
        foreach (var text in OptionalStringArray(root, "allowed_hosts"))
        {
            if (!HostPattern.TryParse(text, out var pattern, out var problem))
                throw Corrupt($"field 'allowed_hosts' entry '{Shorten(text)}' {problem}");
            hosts.Add(pattern!);
        }

        return hosts;
    }

    private static PluginConfig ParseConfig(JsonElement root)
    {
        if (!root.TryGetProperty("config", out var config) || config.ValueKind == JsonValueKind.Null) return PluginConfig.Empty;
        if (config.ValueKind != JsonValueKind.Object) throw Corrupt("field 'config' must be an object");
        var size = System.Text.Encoding.UTF8.GetByteCount(config.GetRawText());
        if (size > PluginConfig.MaxManifestBytes) throw Corrupt($"field 'config' is {size} bytes of JSON; at most {PluginConfig.MaxManifestBytes}");
        return PluginConfig.FromObject(config);
    }

    private static ResourceLimits ParseLimits(JsonElement root)
    {
        if (!root.TryGetProperty("resource_limits", out var limits) || limits.ValueKind == JsonValueKind.Null)
            return ResourceLimits.Defaults;
        if (limits.ValueKind != JsonValueKind.Object) throw Corrupt("field 'resource_limits' must be an object");
        var requested = ResourceLimits.Defaults;
        foreach (var field in ResourceLimits.Fields.Where(f => f.ManifestMayRequest))
            requested = field.With(requested, OptionalInteger(limits, field.Name, field.Get(ResourceLimits.Defaults), field.ManifestMinimum, long.MaxValue, "resource_limits."));
        return requested;
    }

    private static IReadOnlyList<PluginCommand>? ParseCommands(JsonElement root)
    {
        if (!root.TryGetProperty("commands", out var commands) || commands.ValueKind == JsonValueKind.Null) return null;
        if (commands.ValueKind != JsonValueKind.Array) throw Corrupt("field 'commands' must be an array of {name, description}");
        var result = new List<PluginCommand>();
        var index = 0;
        foreach (var command in commands.EnumerateArray())
        {
            var where = $"commands[{index++}]";
            if (command.ValueKind != JsonValueKind.Object) throw Corrupt($"field '{where}' must be an object with a 'name'");
            if (!command.TryGetProperty("name", out var nameElement) || nameElement.ValueKind != JsonValueKind.String)
                throw Corrupt($"field '{where}.name' is required and must be a string");
            var name = nameElement.GetString()!;
            if (name.Length is 0 or > 256) throw Corrupt($"field '{where}.name' must be 1 to 256 characters");
            if (result.Any(existing => existing.Name == name)) throw Corrupt($"field 'commands' names '{Shorten(name)}' twice");
            result.Add(new PluginCommand(name, OptionalString(command, "description", where + ".")));
        }

        return result;
    }

    private static IReadOnlyList<string> ParseDependencies(JsonElement root, string ownId)
    {
        var dependencies = new List<string>();
        foreach (var dependency in OptionalStringArray(root, "dependencies"))
        {
            if (!IsValidPluginId(dependency))
                throw Corrupt($"field 'dependencies' entry '{Shorten(dependency)}' is not a valid plugin id");
            if (dependency == ownId) throw Corrupt("field 'dependencies' names the plugin itself");
            if (!dependencies.Contains(dependency)) dependencies.Add(dependency);
        }

        return dependencies;
    }

    private static SemanticVersion ParseVersion(string text, string field) =>
        SemanticVersion.TryParse(text, out var version)
            ? version!
            : throw Corrupt($"field '{field}' ('{Shorten(text)}') is not a SemVer 2.0 version such as 1.2.3 or 1.0.0-beta.1");

    private static string RequiredString(JsonElement root, string field)
    {
        if (!root.TryGetProperty(field, out var element) || element.ValueKind == JsonValueKind.Null)
            throw Corrupt($"field '{field}' is required");
        if (element.ValueKind != JsonValueKind.String) throw Corrupt($"field '{field}' must be a string");
        return element.GetString()!;
    }

    private static string? OptionalString(JsonElement parent, string field, string prefix = "")
    {
        if (!parent.TryGetProperty(field, out var element) || element.ValueKind == JsonValueKind.Null) return null;
        if (element.ValueKind != JsonValueKind.String) throw Corrupt($"field '{prefix}{field}' must be a string");
        return element.GetString();
    }

    private static long OptionalInteger(JsonElement parent, string field, long fallback, long min, long max, string prefix = "")
    {
        if (!parent.TryGetProperty(field, out var element) || element.ValueKind == JsonValueKind.Null) return fallback;
        if (element.ValueKind != JsonValueKind.Number || !element.TryGetInt64(out var value))
            throw Corrupt($"field '{prefix}{field}' must be a whole number");
        if (value < min || value > max)
            throw Corrupt($"field '{prefix}{field}' must be at least {min}" + (max < long.MaxValue ? $" and at most {max}" : ""));
        return value;
    }

    private static IEnumerable<string> OptionalStringArray(JsonElement root, string field)
    {
        if (!root.TryGetProperty(field, out var array) || array.ValueKind == JsonValueKind.Null) return [];
        if (array.ValueKind != JsonValueKind.Array) throw Corrupt($"field '{field}' must be an array of strings");
        var values = new List<string>();
        foreach (var item in array.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.String) throw Corrupt($"field '{field}' must contain only strings");
            values.Add(item.GetString()!);
        }

        return values;
    }

    private static string Shorten(string text) => text.Length <= 80 ? text : text[..77] + "...";

    private static SandboxException Corrupt(string problem) =>
        new(ErrorReason.CorruptedData, $"{PluginManifest.FileName}: {problem}");
}
