using System.Text.Json;

namespace Connectias.Sandbox;

/// <summary>
/// A plugin's configuration (SPEC §1, §2, §5): a JSON object kept as its top-level members, each with its
/// value's raw JSON, in order. The manifest's <c>config</c> holds the author's defaults, the policy's is
/// merged over it key by key, and the result is <c>ctx.config</c>.
/// </summary>
public sealed class PluginConfig
{
    /// <summary>A manifest's <c>config</c> may be at most this many bytes of JSON.</summary>
    public const int MaxManifestBytes = 16 * 1024;

    public static readonly PluginConfig Empty = new([]);

    private PluginConfig(IReadOnlyList<KeyValuePair<string, string>> members) => Members = members;

    /// <summary>Each top-level key and its value's raw JSON.</summary>
    public IReadOnlyList<KeyValuePair<string, string>> Members { get; }

    /// <summary>The members of a JSON object; the caller has checked that <paramref name="element"/> is one.</summary>
    public static PluginConfig FromObject(JsonElement element)
    {
        if (element.ValueKind != JsonValueKind.Object) throw new ArgumentException("a plugin's config is a JSON object", nameof(element));
        return new PluginConfig(element.EnumerateObject().Select(member => KeyValuePair.Create(member.Name, member.Value.GetRawText())).ToList());
    }

    /// <summary>This config with <paramref name="over"/>'s keys replacing (or adding to) its own, key by key at the top level.</summary>
    public PluginConfig MergedWith(PluginConfig over)
    {
        if (over.Members.Count == 0) return this;
        var overrides = over.Members.ToDictionary(m => m.Key, m => m.Value, StringComparer.Ordinal);
        var merged = Members.Select(m => overrides.Remove(m.Key, out var value) ? KeyValuePair.Create(m.Key, value) : m).ToList();
        merged.AddRange(over.Members.Where(m => overrides.ContainsKey(m.Key)));
        return new PluginConfig(merged);
    }

    public void WriteTo(Utf8JsonWriter json)
    {
        json.WriteStartObject();
        foreach (var (key, raw) in Members)
        {
            json.WritePropertyName(key);
            json.WriteRawValue(raw, skipInputValidation: true); // each value came out of a JSON document
        }

        json.WriteEndObject();
    }
}
