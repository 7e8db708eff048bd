using System.Net;
using Microsoft.Extensions.Options;

namespace Connectias.Sandbox.Daemon.Hosting;

/// <summary>
/// Checks every setting before the daemon does anything; a bad value stops it at start with a message
/// naming the setting (<c>Sandbox:Name</c>), never a surprise later.
/// </summary>
public sealed class DaemonOptionsValidator : IValidateOptions<DaemonOptions>
{
    public const int MaxRestartsPerMinute = 5;

    public ValidateOptionsResult Validate(string? name, DaemonOptions options)
    {
        var failures = Problems(options).Select(problem => $"{DaemonOptions.Section}:{problem}").ToList();
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    private static IEnumerable<string> Problems(DaemonOptions o)
    {
        if (string.IsNullOrWhiteSpace(o.StateDir)) yield return "StateDir must name a directory";
        // Unset is null; set but empty is a mistake (an empty environment variable, say), not "the default".
        if (o.Socket is { } socket && string.IsNullOrWhiteSpace(socket)) yield return "Socket is empty; leave it unset for the default";
        if (o.TrustDir is { } trust && string.IsNullOrWhiteSpace(trust)) yield return "TrustDir is empty; leave it unset for the default";
        if (o.Policy is { } policy && string.IsNullOrWhiteSpace(policy)) yield return "Policy is empty; leave it unset for the built-in policy";
        if (!DaemonOptions.SandboxModes.Contains(o.Sandbox))
            yield return $"Sandbox '{o.Sandbox}' is not a sandbox mode; use {string.Join(", ", DaemonOptions.SandboxModes)}";
        if (!Workers.WorkerIdentity.TryParse(o.WorkerUser, out _))
            yield return $"WorkerUser '{o.WorkerUser}' is not UID:GID with numbers above 0, e.g. 65534:65534";
        if (!DaemonOptions.WorkerRuntimes.Contains(o.WorkerRuntime))
            yield return $"WorkerRuntime '{o.WorkerRuntime}' is not a worker runtime; use {string.Join(", ", DaemonOptions.WorkerRuntimes)}";
        if (o.Tcp is { Length: > 0 } tcp && (!IPEndPoint.TryParse(tcp, out var endpoint) || endpoint.Port == 0))
            yield return $"Tcp '{tcp}' is not IP:PORT, e.g. 127.0.0.1:7700";
        else
            foreach (var problem in TcpSecurityProblems(o)) yield return problem;
        if (o.MetricsListen is { Length: > 0 } metrics)
        {
            if (!IPEndPoint.TryParse(metrics, out var metricsEndpoint) || metricsEndpoint.Port == 0)
                yield return $"MetricsListen '{metrics}' is not IP:PORT, e.g. 127.0.0.1:9464";
            // /metrics is served by local port, so the gRPC listener must never share it (even on another address).
            else if (o.Tcp is { Length: > 0 } && IPEndPoint.TryParse(o.Tcp, out var tcpEndpoint) && tcpEndpoint.Port == metricsEndpoint.Port)
                yield return $"MetricsListen '{metrics}' uses the port of Tcp '{o.Tcp}'; the scrape endpoint needs a port of its own";
        }

        if (o.OtlpEndpoint is { Length: > 0 } otlp && (!Uri.TryCreate(otlp, UriKind.Absolute, out var otlpUri) || otlpUri.Scheme is not ("http" or "https")))
            yield return $"OtlpEndpoint '{otlp}' is not an http:// or https:// URL, e.g. http://127.0.0.1:4317";
        if (!DaemonOptions.OtlpProtocols.Contains(o.OtlpProtocol))
            yield return $"OtlpProtocol '{o.OtlpProtocol}' is not an OTLP protocol; use {string.Join(", ", DaemonOptions.OtlpProtocols)}";

        foreach (var (setting, value, minimum) in new (string, long, long)[]
        {
            (nameof(o.WorkerStartTimeoutMs), o.WorkerStartTimeoutMs, 1),
            (nameof(o.WorkerLoadGraceMs), o.WorkerLoadGraceMs, 0),
            (nameof(o.UnloadTimeoutMs), o.UnloadTimeoutMs, 1),
            (nameof(o.CallGraceMs), o.CallGraceMs, 0),
            (nameof(o.WorkerStopGraceMs), o.WorkerStopGraceMs, 0),
            (nameof(o.RestartBackoffMs), o.RestartBackoffMs, 1),
            (nameof(o.RestartsPerMinute), o.RestartsPerMinute, 0),
            (nameof(o.QueueLimit), o.QueueLimit, 1),
            (nameof(o.WorkerPipelineDepth), o.WorkerPipelineDepth, 1),
            (nameof(o.QueueBytesPerPlugin), o.QueueBytesPerPlugin, 1),
            (nameof(o.QueueBytesTotal), o.QueueBytesTotal, 1),
            (nameof(o.ModuleCacheMaxBytes), o.ModuleCacheMaxBytes, 0),
            (nameof(o.WarmWorkers), o.WarmWorkers, 0),
            (nameof(o.MaxPlugins), o.MaxPlugins, 1),
            (nameof(o.AuditRepeatWindowMs), o.AuditRepeatWindowMs, 0),
            (nameof(o.MonitorIntervalMs), o.MonitorIntervalMs, 10),
            (nameof(o.WorkerRssAllowanceBytes), o.WorkerRssAllowanceBytes, 0),
            (nameof(o.UnloadedRetentionSeconds), o.UnloadedRetentionSeconds, 0),
            (nameof(o.PluginLogLinesPerCall), o.PluginLogLinesPerCall, 1),
            (nameof(o.PluginLogBytesPerCall), o.PluginLogBytesPerCall, PluginBudgets.MaxLogLineBytes), // one whole line
            (nameof(o.StorageMaxEntries), o.StorageMaxEntries, 1),
        })
        {
            if (value < minimum) yield return $"{setting} is {value}; it must be at least {minimum}";
        }

        foreach (var (setting, value, minimum, because) in new (string, long, long, string)[]
        {
            (nameof(o.PluginLogLinesPerMinute), o.PluginLogLinesPerMinute, o.PluginLogLinesPerCall, $"{nameof(o.PluginLogLinesPerCall)}"),
            (nameof(o.PluginLogBytesPerMinute), o.PluginLogBytesPerMinute, o.PluginLogBytesPerCall, $"{nameof(o.PluginLogBytesPerCall)}"),
            // A daemon minute may see the end of one of the worker's minutes and the start of the next, each with its
            // summary line, and the worker's own lines: three times the plugin's budget keeps the backstop out of its way.
            (nameof(o.WorkerLogLinesPerMinute), o.WorkerLogLinesPerMinute, 3L * o.PluginLogLinesPerMinute, $"three times {nameof(o.PluginLogLinesPerMinute)}"),
            (nameof(o.WorkerLogCharsPerMinute), o.WorkerLogCharsPerMinute, o.PluginLogBytesPerMinute > long.MaxValue / 3 ? long.MaxValue : 3 * o.PluginLogBytesPerMinute, $"three times {nameof(o.PluginLogBytesPerMinute)}"),
        })
        {
            if (value < minimum) yield return $"{setting} is {value}; it must be at least {minimum}, {because}";
        }

        // SPEC §5: a plugin is restarted at most 5 times a minute.
        if (o.RestartsPerMinute > MaxRestartsPerMinute)
        {
            yield return $"{nameof(o.RestartsPerMinute)} is {o.RestartsPerMinute}; it may be at most {MaxRestartsPerMinute}";
        }
    }

    /// <summary>
    /// SPEC §5: TCP is served only with TLS and client certificates, or as plaintext when the operator says so explicitly;
    /// half a TLS configuration, or TLS settings and plaintext at once, is a mistake, and so are settings with no listener.
    /// </summary>
    private static IEnumerable<string> TcpSecurityProblems(DaemonOptions o)
    {
        var tls = new (string Setting, string Flag, string? Value)[]
        {
            (nameof(o.TlsCertificate), "--tls-cert FILE", o.TlsCertificate),
            (nameof(o.TlsKey), "--tls-key FILE", o.TlsKey),
            (nameof(o.TlsClientCaDir), "--tls-client-ca DIR", o.TlsClientCaDir),
        };
        foreach (var (setting, _, value) in tls)
        {
            if (value is not null && string.IsNullOrWhiteSpace(value)) yield return $"{setting} is empty; leave it unset or name a file";
        }

        if (o.Tcp is not { Length: > 0 } tcp)
        {
            if (o.TcpInsecure) yield return "TcpInsecure is set but Tcp is not; it only allows a plaintext TCP listener (--tcp IP:PORT)";
            var given = tls.Where(t => t.Value is not null).Select(t => t.Setting).ToList();
            if (given.Count > 0)
                yield return $"{string.Join(", ", given)} {(given.Count == 1 ? "is" : "are")} set but Tcp is not; the TLS settings are for the TCP listener (--tcp IP:PORT)";
            yield break;
        }

        if (o.TcpInsecure)
        {
            if (o.TlsConfigured) yield return "TcpInsecure is set together with TLS settings; choose TLS with client certificates or plaintext, not both";
            yield break;
        }

        var missing = tls.Where(t => t.Value is null).ToList(); // an empty one was named above
        if (missing.Count > 0)
        {
            yield return $"Tcp '{tcp}' is served only with TLS and client certificates, and {string.Join(", ", missing.Select(t => $"{t.Setting} ({t.Flag})"))} "
                         + $"{(missing.Count == 1 ? "is" : "are")} not set; or allow plaintext TCP explicitly with --tcp-insecure (Sandbox:TcpInsecure=true)";
        }
    }
}
