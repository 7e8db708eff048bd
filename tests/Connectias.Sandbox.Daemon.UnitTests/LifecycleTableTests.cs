using System.Threading.Channels;
using Connectias.Sandbox.Audit;
using Connectias.Sandbox.Daemon.Lifecycle;
using Connectias.Sandbox.Daemon.Policy;
using Connectias.Sandbox.V1;
using static Connectias.Sandbox.Daemon.UnitTests.ChannelReaders;

namespace Connectias.Sandbox.Daemon.UnitTests;

/// <summary>The plugin lifecycle: which transitions exist, and what each one does (state, event, audit, module).</summary>
public sealed class LifecycleTableTests : IDisposable
{
    private static readonly PluginState[] States = [PluginState.Loading, PluginState.Ready, PluginState.Terminated, PluginState.Crashed, PluginState.Unloaded];
    private readonly LifecycleHarness _harness = new();
    private PluginLifecycle Lifecycle => _harness.Lifecycle;

    public static TheoryData<PluginState, PluginState, bool> EveryPair()
    {
        var allowed = new HashSet<(PluginState, PluginState)>
        {
            (PluginState.Loading, PluginState.Ready), (PluginState.Loading, PluginState.Terminated), (PluginState.Loading, PluginState.Crashed),
            (PluginState.Loading, PluginState.Unloaded), (PluginState.Ready, PluginState.Terminated), (PluginState.Ready, PluginState.Crashed),
            (PluginState.Ready, PluginState.Unloaded), (PluginState.Terminated, PluginState.Loading), (PluginState.Crashed, PluginState.Loading),
            (PluginState.Terminated, PluginState.Unloaded), (PluginState.Crashed, PluginState.Unloaded),
        };
        var data = new TheoryData<PluginState, PluginState, bool>();
        foreach (var from in States)
            foreach (var to in States)
                data.Add(from, to, allowed.Contains((from, to)));
        return data;
    }

    [Theory]
    [MemberData(nameof(EveryPair))]
    public void The_table_allows_exactly_the_lifecycle_of_the_spec(PluginState from, PluginState to, bool allowed)
    {
        Assert.Equal(allowed, PluginLifecycle.IsAllowed(from, to));
        var plugin = Plugin(from);
        var events = Watch(plugin.Id);
        var result = Lifecycle.TryTransition(plugin, new Transition(to) { Reason = "TIMEOUT", Message = "why" });
        Assert.Equal(allowed, result.Applied);
        Assert.Equal(allowed ? to : from, plugin.State);
        var published = Drain(events);
        if (!allowed)
        {
            Assert.Empty(published);
            return;
        }

        Assert.Contains(published, e => e.StateChanged is { } change && change.Previous == from && change.Current == to && change.Reason == "TIMEOUT" && change.Message == "why");
        var expectedAudit = PluginLifecycle.Allowed[(from, to)];
        if (expectedAudit is null) Assert.DoesNotContain(published, e => e.Audit is not null);
        else Assert.Contains(published, e => e.Audit?.Event == expectedAudit);
    }

    [Fact]
    public void Every_state_but_unloaded_can_reach_unloaded_and_unloaded_is_final()
    {
        foreach (var state in States.Where(s => s != PluginState.Unloaded)) Assert.True(PluginLifecycle.IsAllowed(state, PluginState.Unloaded));
        Assert.All(States, to => Assert.False(PluginLifecycle.IsAllowed(PluginState.Unloaded, to)));
    }

    [Fact]
    public void A_transition_whose_condition_fails_changes_nothing()
    {
        var plugin = Plugin(PluginState.Ready);
        var events = Watch(plugin.Id);
        Assert.False(Lifecycle.TryTransition(plugin, new Transition(PluginState.Terminated) { OnlyIf = _ => false, Apply = p => p.Restarts = 99 }).Applied);
        Assert.Equal(PluginState.Ready, plugin.State);
        Assert.Equal(0u, plugin.Restarts);
        Assert.Empty(Drain(events));
    }

    [Fact]
    public void The_callers_audit_event_and_details_replace_the_tables()
    {
        var plugin = Plugin(PluginState.Loading);
        var events = Watch(plugin.Id);
        var result = Lifecycle.TryTransition(plugin, new Transition(PluginState.Ready)
        {
            AuditEvent = AuditEvents.PluginRestarted,
            Apply = p => p.Restarts++,
            AuditDetails = json => json.WriteNumber("restarts", plugin.Restarts),
        });
        Assert.True(result.Audited);
        var audit = Assert.Single(Drain(events), e => e.Audit is not null).Audit;
        Assert.Equal(AuditEvents.PluginRestarted, audit.Event);
        Assert.Contains("\"restarts\":1", audit.DetailsJson);
    }

    [Fact]
    public void Unloading_releases_the_module_and_starts_the_retention_clock()
    {
        var plugin = Plugin(PluginState.Ready);
        Lifecycle.TryTransition(plugin, new Transition(PluginState.Unloaded));
        Assert.Null(plugin.Module);
        Assert.NotNull(plugin.UnloadedAt);
    }

    [Theory]
    [InlineData(RestartPolicy.Never, false)]
    [InlineData(RestartPolicy.OnFailure, true)]
    public void A_terminated_plugin_keeps_its_module_only_when_a_restart_may_need_it(RestartPolicy restart, bool kept)
    {
        var plugin = Plugin(PluginState.Ready, restart);
        Lifecycle.TryTransition(plugin, new Transition(PluginState.Terminated));
        Assert.Equal(kept, plugin.Module is not null);
    }

    [Fact]
    public void A_failed_audit_write_is_reported_but_the_state_still_changes()
    {
        var plugin = Plugin(PluginState.Ready);
        _harness.Audit.Dispose();
        var result = Lifecycle.TryTransition(plugin, new Transition(PluginState.Unloaded));
        Assert.True(result.Applied);
        Assert.False(result.Audited);
        Assert.Equal(PluginState.Unloaded, plugin.State);
    }

    private static ManagedPlugin Plugin(PluginState state, RestartPolicy restart = RestartPolicy.Never) =>
        LifecycleHarness.Plugin($"com.test.p{Guid.NewGuid():N}"[..20], state, restart);

    private ChannelReader<Event> Watch(string pluginId) => _harness.Events.Subscribe(pluginId, CancellationToken.None);

    public void Dispose() => _harness.Dispose();
}
