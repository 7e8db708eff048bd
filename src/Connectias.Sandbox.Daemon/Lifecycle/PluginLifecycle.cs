using System.Text.Json;
using Connectias.Sandbox.Audit;
using Connectias.Sandbox.Daemon.Events;
using Connectias.Sandbox.Daemon.Policy;
using Connectias.Sandbox.V1;

namespace Connectias.Sandbox.Daemon.Lifecycle;

/// <summary>One requested state change, with what must be true and what must change with it.</summary>
/// <param name="To">The new state.</param>
internal sealed record Transition(PluginState To)
{
    /// <summary>For TERMINATED and CRASHED: the ErrorReason name that caused it.</summary>
    public string Reason { get; init; } = "";
    public string Message { get; init; } = "";

    /// <summary>The audit event to write instead of the table's (PLUGIN_RESTARTED for a restart's READY).</summary>
    public string? AuditEvent { get; init; }
    public Action<Utf8JsonWriter>? AuditDetails { get; init; }

    /// <summary>False when another record covers this change (an upgrade's retired version: PLUGIN_UPGRADE says it all).</summary>
    public bool WriteAudit { get; init; } = true;

    /// <summary>Checked under the plugin's lock; the transition happens only when it holds.</summary>
    public Func<ManagedPlugin, bool>? OnlyIf { get; init; }

    /// <summary>Done under the plugin's lock together with the state change (e.g. the new current worker).</summary>
    public Action<ManagedPlugin>? Apply { get; init; }
}

/// <summary>Whether a transition happened, and whether its audit record was written.</summary>
internal readonly record struct TransitionResult(bool Applied, bool Audited);

/// <summary>
/// The plugin lifecycle: every state change of every plugin goes through <see cref="TryTransition"/>, which
/// checks <see cref="Allowed"/>, changes the state, publishes the StateChanged event and writes the audit record.
///
/// LOCK ORDER, followed everywhere in the daemon: the registry's lock, then a plugin's <c>Sync</c>, then a
/// worker handle's lock, then the audit's locks (RepeatedAuditRecords', AuditTrail's, AuditLog's), then the event hub's lock. A lock is only ever taken while
/// holding locks earlier in this list, and nothing is awaited while any of them is held.
/// </summary>
internal sealed class PluginLifecycle(EventHub events, AuditTrail audit)
{
    /// <summary>
    /// Every allowed transition and the audit event it writes (null: none, the transition that follows is
    /// audited). LOADING → UNLOADED is an unload that won against a load; TERMINATED/CRASHED → LOADING is a restart.
    /// </summary>
    public static readonly IReadOnlyDictionary<(PluginState From, PluginState To), string?> Allowed = new Dictionary<(PluginState, PluginState), string?>
    {
        [(PluginState.Loading, PluginState.Ready)] = AuditEvents.PluginLoad,
        [(PluginState.Loading, PluginState.Terminated)] = AuditEvents.PluginTerminated,
        [(PluginState.Loading, PluginState.Crashed)] = AuditEvents.PluginCrashed,
        [(PluginState.Loading, PluginState.Unloaded)] = AuditEvents.PluginUnload,
        [(PluginState.Ready, PluginState.Terminated)] = AuditEvents.PluginTerminated,
        [(PluginState.Ready, PluginState.Crashed)] = AuditEvents.PluginCrashed,
        [(PluginState.Ready, PluginState.Unloaded)] = AuditEvents.PluginUnload,
        [(PluginState.Terminated, PluginState.Loading)] = null,
        [(PluginState.Crashed, PluginState.Loading)] = null,
        [(PluginState.Terminated, PluginState.Unloaded)] = AuditEvents.PluginUnload,
        [(PluginState.Crashed, PluginState.Unloaded)] = AuditEvents.PluginUnload,
    };

    public static bool IsAllowed(PluginState from, PluginState to) => Allowed.ContainsKey((from, to));

    /// <summary>
    /// Applies <paramref name="transition"/> if the table allows it from the plugin's current state and its
    /// condition holds; otherwise changes nothing. A transition that loses a race (an unload that came first,
    /// say) is therefore refused, not applied twice.
    /// </summary>
    public TransitionResult TryTransition(ManagedPlugin plugin, Transition transition)
    {
        lock (plugin.Sync)
        {
            var from = plugin.State;
            if (!Allowed.TryGetValue((from, transition.To), out var tableEvent)) return new TransitionResult(false, false);
            if (transition.OnlyIf is { } condition && !condition(plugin)) return new TransitionResult(false, false);

            plugin.State = transition.To;
            plugin.StateReason = transition.Reason;
            plugin.StateMessage = transition.Message;
            transition.Apply?.Invoke(plugin);
            if (transition.To == PluginState.Unloaded)
            {
                plugin.UnloadedAt = DateTime.UtcNow;
                plugin.Module = null;
            }
            else if (transition.To is PluginState.Terminated or PluginState.Crashed && plugin.Grant.Restart != RestartPolicy.OnFailure)
            {
                plugin.Module = null; // no restart will need it
            }

            events.Publish(plugin.Id, e => e.StateChanged = new StateChanged { Previous = from, Current = transition.To, Reason = transition.Reason, Message = transition.Message });
            var auditEvent = transition.AuditEvent ?? tableEvent;
            var audited = auditEvent is null || !transition.WriteAudit || audit.Record(auditEvent, plugin.Id, transition.AuditDetails);
            return new TransitionResult(true, audited);
        }
    }
}
