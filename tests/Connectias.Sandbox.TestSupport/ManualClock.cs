namespace Connectias.Sandbox.TestSupport;

/// <summary>A clock that moves only when told to: windows of a minute are tested without sleeping.</summary>
public sealed class ManualClock : TimeProvider
{
    public static readonly DateTimeOffset Start = new(2026, 1, 1, 12, 0, 0, TimeSpan.Zero);
    private long _ticks;

    public override long TimestampFrequency => TimeSpan.TicksPerSecond;

    public override long GetTimestamp() => _ticks;

    public override DateTimeOffset GetUtcNow() => Start.AddTicks(_ticks);

    public void Advance(TimeSpan by) => _ticks += by.Ticks;
}
