using Connectias.Sandbox.TestSupport;
using Connectias.Sandbox.Daemon.Workers;

namespace Connectias.Sandbox.Daemon.UnitTests;

/// <summary>
/// Handing a worker its directories must never give it anything else: a link it planted in its storage directory
/// is chowned as a link, never followed. Needs root (as CI runs), which can chown at all.
/// </summary>
public sealed class WorkerIdentityTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("connectias-identity-").FullName;

    [Fact]
    public void Handing_over_a_storage_directory_chowns_its_entries_and_follows_no_link()
    {
        Assert.True(Environment.IsPrivilegedProcess, "chown needs root; the tests run as root, as CI does");
        var secret = Path.Combine(_root, "secret");
        File.WriteAllText(secret, "root's");
        var outside = Directory.CreateDirectory(Path.Combine(_root, "outside")).FullName;
        File.WriteAllText(Path.Combine(outside, "shadow"), "root's too");
        var storage = Directory.CreateDirectory(Path.Combine(_root, "storage")).FullName;
        File.WriteAllText(Path.Combine(storage, "entry.kv"), "the plugin's");
        File.CreateSymbolicLink(Path.Combine(storage, "to-secret"), secret);
        Directory.CreateSymbolicLink(Path.Combine(storage, "to-outside"), outside);

        Assert.True(WorkerIdentity.TryParse("65534:65534", out var identity));
        identity!.HandOver(storage);

        Assert.Equal(65534, FileOwner.Uid(storage));
        Assert.Equal(65534, FileOwner.Uid(Path.Combine(storage, "entry.kv")));
        Assert.Equal(65534, FileOwner.Uid(Path.Combine(storage, "to-secret"))); // the link itself
        Assert.Equal(0, FileOwner.Uid(secret)); // not what it points to
        Assert.Equal(0, FileOwner.Uid(outside));
        Assert.Equal(0, FileOwner.Uid(Path.Combine(outside, "shadow"))); // nor anything reached through a linked directory
    }

    [Theory]
    [InlineData("nobody")]
    [InlineData("0:0")]
    [InlineData("65534")]
    [InlineData("65534:")]
    [InlineData("-1:5")]
    public void A_user_that_is_not_two_numbers_above_zero_is_refused(string text) => Assert.False(WorkerIdentity.TryParse(text, out _));

    public void Dispose() => Directory.Delete(_root, recursive: true);
}
