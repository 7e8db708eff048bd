using Connectias.Sandbox.Daemon.Workers;

namespace Connectias.Sandbox.Daemon.UnitTests;

public class BoundedLineReaderTests
{
    [Fact]
    public async Task Lines_come_whole_up_to_the_bound_and_longer_ones_are_cut_and_counted()
    {
        var text = "short\r\n" + new string('x', 50_000) + "\nlast without end";
        var reader = new BoundedLineReader(new StringReader(text), maxChars: 1000);
        Assert.Equal(("short", 0L), await reader.ReadLineAsync());
        var (cut, dropped) = (await reader.ReadLineAsync())!.Value;
        Assert.Equal(new string('x', 1000), cut);
        Assert.Equal(49_000, dropped);
        Assert.Equal(("last without end", 0L), await reader.ReadLineAsync());
        Assert.Null(await reader.ReadLineAsync());
    }
}
