using System.Globalization;
using System.Text.Json;
using Connectias.Sandbox.Audit;
using Connectias.Sandbox.Daemon.Policy;
using Connectias.Sandbox.Daemon.Telemetry;
using Connectias.Sandbox.V1;

namespace Connectias.Sandbox.Daemon.Events;

/// <summary>
/// Writes an audit record and publishes it to WatchEvents; the one way the daemon audits. It also knows whether the log
/// can be written: after a write fails (a full disk) the log is <em>failing</em>, every record that cannot be written
/// is counted as lost (the log, the metric, and the AUDIT_LOG_RESUMED record that ends the episode), and with the
/// policy's <c>audit_failure: refuse</c> (the default) loads and executions are refused with AUDIT_LOG_FAILED. The log
/// is tried again at each such admission and each record, so it serves again as soon as one record is written.
/// </summary>
internal sealed class AuditTrail(AuditLog log, EventHub events, AdminPolicy policy, DaemonMetrics metrics, ILogger<AuditTrail> logger)
{
    // The audit log's place in the lock order (docs/architecture.md): it wraps the log's own lock, and is taken only
    // around writes to the log, never while waiting for anything else.
    private readonly Lock _sync = new();
    private volatile bool _failing;
    private string _failingSince = "";
    private string _failure = "";
    private long _lostWhileFailing;
    private long _lostTotal;

    /// <summary>Records that could not be written since the daemon started.</summary>
    public long LostRecords => Interlocked.Read(ref _lostTotal);

    /// <summary>False when the record could not be written (the failure is logged and counted); the caller decides what that costs.</summary>
    public bool Record(string auditEvent, string pluginId, Action<Utf8JsonWriter>? details = null)
    {
        AuditRecord? resumed = null, record = null;
        lock (_sync)
        {
            var written = (!_failing || TryResume(out resumed)) && TryAppend(auditEvent, pluginId, details, out record);
            if (!written) Lose(auditEvent, pluginId);
        }

        if (resumed is not null) Publish(resumed);
        if (record is null) return false;
        Publish(record);
        return true;
    }

    /// <summary>
    /// At the admission of a load or an execution: while the log is failing, tries it again, and under
    /// <c>audit_failure: refuse</c> refuses with AUDIT_LOG_FAILED when it still cannot be written.
    /// </summary>
    public void EnsureWritable(string pluginId)
    {
        if (!_failing) return; // the common case: one volatile read
        AuditRecord? resumed = null;
        bool writable;
        lock (_sync) writable = !_failing || TryResume(out resumed);
        if (resumed is not null) Publish(resumed);
        if (!writable && policy.AuditFailure == AuditFailureMode.Refuse) throw Refusal(pluginId, "loads and executions are refused until it can");
    }

    /// <summary>
    /// After a load: under <c>audit_failure: refuse</c>, AUDIT_LOG_FAILED when any record was lost since
    /// <paramref name="lostBefore"/> (<see cref="LostRecords"/> when the load began), its own among them.
    /// </summary>
    public void EnsureNoneLostSince(long lostBefore, string pluginId)
    {
        if (policy.AuditFailure == AuditFailureMode.Refuse && LostRecords != lostBefore)
            throw Refusal(pluginId, "the load is undone");
    }

    /// <summary>At start: says so when opening the log cut off a record a crash or a full disk left unfinished.</summary>
    public void RecordRecoveryAtStart()
    {
        if (log.RecoveredAtOpen is not { } recovered) return;
        logger.LogWarning("audit log {Path} ended inside a record (a write cut short by a crash or a full disk): cut off its last {Bytes} bytes; "
                          + "the log continues after its last whole record", log.Path, recovered.BytesDropped);
        Record(AuditEvents.AuditLogRecovered, "", json =>
        {
            json.WriteNumber("bytes_dropped", recovered.BytesDropped);
            json.WriteNumber("kept_bytes", recovered.KeptBytes);
        });
    }

    private bool TryAppend(string auditEvent, string pluginId, Action<Utf8JsonWriter>? details, out AuditRecord? record)
    {
        record = null;
        try
        {
            record = log.Append(auditEvent, pluginId, details);
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ObjectDisposedException)
        {
            _failure = e.Message;
            if (!_failing)
            {
                _failingSince = DateTime.UtcNow.ToString("O", CultureInfo.InvariantCulture);
                _failing = true;
                logger.LogError(e, "AUDIT LOG FAILED: {Path} cannot be written; {Consequence}", log.Path, policy.AuditFailure == AuditFailureMode.Refuse
                    ? "loads and executions are refused with AUDIT_LOG_FAILED until it can (policy audit_failure: refuse)"
                    : "plugins are still served and every record lost is counted (policy audit_failure: continue)");
            }

            return false;
        }
    }

    /// <summary>Writes the record that ends a failing episode with the count of records lost in it; true once it is written.</summary>
    private bool TryResume(out AuditRecord? resumed)
    {
        var lost = _lostWhileFailing;
        var since = _failingSince;
        var failure = _failure;
        var written = TryAppend(AuditEvents.AuditLogResumed, "", json =>
        {
            json.WriteNumber("lost_records", lost);
            json.WriteString("failing_since", since);
            json.WriteString("error", failure);
            json.WriteString("audit_failure", policy.AuditFailure == AuditFailureMode.Refuse ? "refuse" : "continue");
        }, out resumed);
        if (!written) return false;

        _failing = false;
        _lostWhileFailing = 0;
        logger.LogWarning("audit log {Path} can be written again: {Lost} record(s) were lost since {Since}; AUDIT_LOG_RESUMED (seq {Seq}) says so",
            log.Path, lost, since, resumed!.Seq);
        return true;
    }

    private void Lose(string auditEvent, string pluginId)
    {
        _lostWhileFailing++;
        var total = Interlocked.Increment(ref _lostTotal);
        metrics.AuditRecordLost(auditEvent);
        logger.LogError("audit record lost: {Event} of {PluginId} ({Lost} lost since {Since}, {Total} since start): {Failure}",
            auditEvent, pluginId.Length > 0 ? pluginId : "the daemon", _lostWhileFailing, _failingSince, total, _failure);
    }

    private SandboxException Refusal(string pluginId, string consequence) =>
        new(ErrorReason.AuditLogFailed, $"the audit log cannot be written ({_failure}); {consequence} (policy audit_failure: refuse)", ErrorMetadata.For(pluginId));

    private void Publish(AuditRecord record) =>
        events.Publish(record.PluginId, e => e.Audit = new AuditEvent { Seq = (ulong)record.Seq, Event = record.Event, DetailsJson = record.DetailsJson, Hash = record.Hash });

    /// <summary>The most characters of a message an audit record keeps (a plugin's error message may be 64 KiB).</summary>
    public const int MaxMessageChars = 2048;

    /// <summary>
    /// Writes <c>message</c>, cut to <see cref="MaxMessageChars"/>, and <c>message_length</c> when it was cut: a plugin
    /// that fails every call with a long message cannot fill the audit log at that rate.
    /// </summary>
    public static void WriteMessage(Utf8JsonWriter json, string message)
    {
        if (message.Length <= MaxMessageChars)
        {
            json.WriteString("message", message);
            return;
        }

        json.WriteString("message", message[..MaxMessageChars]);
        json.WriteNumber("message_length", message.Length);
    }

    /// <summary>The cause of a termination in a record's details: reason, message, pid and the error's metadata.</summary>
    public static void WriteCause(Utf8JsonWriter json, SandboxException cause, int pid)
    {
        json.WriteString("reason", cause.Reason.WireName());
        WriteMessage(json, cause.Message);
        json.WriteNumber("pid", pid);
        foreach (var (key, value) in cause.Metadata.Where(m => m.Key != "plugin_id")) json.WriteString(key, value);
    }

    /// <summary>The public API's form of a violation event.</summary>
    public static Violation Violation(SandboxException cause)
    {
        var violation = new Violation { Reason = cause.Reason.WireName(), Message = cause.Message };
        foreach (var (key, value) in cause.Metadata) violation.Metadata[key] = value;
        return violation;
    }
}
