using System.Text.Json;

namespace Connectias.Sandbox.Daemon.Network;

/// <summary>
/// The JSON of <c>http_request</c> (SPEC §3) on the broker's side: the request a plugin sends (method, url, headers,
/// body_base64) and the response it gets back (status, headers, body_base64).
/// </summary>
internal static class BrokerJson
{
    /// <summary>False for anything that is not an object with an absolute url: the plugin gets <see cref="AbiCodes.BadRequest"/>.</summary>
    public static bool TryParseRequest(byte[] requestJson, out HttpMethod method, out Uri? uri, out List<KeyValuePair<string, string>> headers, out byte[]? body)
    {
        method = HttpMethod.Get;
        uri = null;
        headers = [];
        body = null;
        try
        {
            using var document = JsonDocument.Parse(requestJson);
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("url", out var url) || url.ValueKind != JsonValueKind.String) return false;
            if (!Uri.TryCreate(url.GetString(), UriKind.Absolute, out uri)) return false;
            if (root.TryGetProperty("method", out var m) && m.ValueKind == JsonValueKind.String) method = new HttpMethod(m.GetString()!.ToUpperInvariant());
            if (root.TryGetProperty("headers", out var h) && h.ValueKind == JsonValueKind.Object)
                foreach (var header in h.EnumerateObject().Where(p => p.Value.ValueKind == JsonValueKind.String)) headers.Add(new(header.Name, header.Value.GetString()!));
            if (root.TryGetProperty("body_base64", out var b) && b.ValueKind == JsonValueKind.String) body = Convert.FromBase64String(b.GetString()!);
            return true;
        }
        catch (Exception e) when (e is JsonException or FormatException or ArgumentException)
        {
            return false;
        }
    }

    /// <summary>The response as the plugin sees it: header names in lower case, the body as base64.</summary>
    public static byte[] Response(HttpResponseMessage response, byte[] body)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteNumber("status", (int)response.StatusCode);
            json.WriteStartObject("headers");
            foreach (var header in response.Headers.Concat(response.Content.Headers)) json.WriteString(header.Key.ToLowerInvariant(), string.Join(", ", header.Value));
            json.WriteEndObject();
            json.WriteString("body_base64", Convert.ToBase64String(body));
            json.WriteEndObject();
        }

        return buffer.ToArray();
    }
}
