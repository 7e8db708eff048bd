using System.Threading.Channels;
using Connectias.Sandbox.Packaging;
using Connectias.Sandbox.V1;
using Connectias.Sandbox.Worker.V1;
using Grpc.Net.Client;

namespace Connectias.Sandbox.Daemon;

/// <summary>One call waiting for, or running in, a plugin.</summary>
internal sealed class CallJob(string command, byte[] args, DateTime? deadline, CancellationToken cancellation)
{
    public string Command { get; } = command;
    public byte[] Args { get; } = args;
    public DateTime? Deadline { get; } = deadline;
    public CancellationToken Cancellation { get; } = cancellation;
    public TaskCompletionSource<V1.ExecuteResponse> Result { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
}

/// <summary>One worker process serving a plugin: it lives until the plugin is terminated, crashes, restarts or unloads.</summary>
internal sealed class Incarnation(int number, StartedWorker worker, GrpcChannel channel, string runDirectory, int queueLimit)
{
    public int Number { get; } = number;
    public StartedWorker Worker { get; } = worker;
    public int Pid => Worker.Process.Id;
    public GrpcChannel Channel { get; } = channel;
    public PluginWorker.PluginWorkerClient Client { get; } = new(channel);
    public string RunDirectory { get; } = runDirectory;
    public Channel<CallJob> Queue { get; } = System.Threading.Channels.Channel.CreateBounded<CallJob>(new BoundedChannelOptions(queueLimit) { SingleReader = true, FullMode = BoundedChannelFullMode.Wait });
    public CancellationTokenSource Lifetime { get; } = new();

    /// <summary>Cancelled as soon as the daemon decides to end this worker: its network requests end with it.</summary>
    public CancellationTokenSource NetworkLifetime { get; } = new();

    /// <summary>Set when the daemon ends this incarnation on purpose, with the reason calls in flight must see.</summary>
    public SandboxException? EndedBy { get; set; }
    public bool Ending { get; set; }
    public Task? QueueLoop { get; set; }

    /// <summary>The Broker stream to the worker, open when the plugin may use the network.</summary>
    public Grpc.Core.AsyncDuplexStreamingCall<Worker.V1.BrokerReply, Worker.V1.BrokerCall>? BrokerStream { get; set; }
}

/// <summary>A plugin the daemon knows: its verified package, its grant, its state and usage.</summary>
internal sealed class ManagedPlugin(PluginPackage package, SignerIdentity signer, PolicyGrant grant, EffectiveLimits limits)
{
    public Lock Sync { get; } = new();
    public PluginPackage Package { get; } = package;
    public PluginManifest Manifest => Package.Manifest;
    public string Id => Manifest.Id;
    public SignerIdentity Signer { get; } = signer;
    public PolicyGrant Grant { get; } = grant;
    public EffectiveLimits Limits { get; } = limits;
    public DateTime LoadedAt { get; set; } = DateTime.UtcNow;

    public PluginState State { get; set; } = PluginState.Loading;
    public string StateReason { get; set; } = "";
    public string StateMessage { get; set; } = "";
    public Incarnation? Current { get; set; }
    public uint Restarts { get; set; }

    /// <summary>Performs the plugin's network requests; one per plugin, kept across restarts.</summary>
    public NetworkBroker? Broker { get; set; }
    public Queue<DateTime> RecentRestarts { get; } = new();

    public long Calls;
    public long Failures;
    public long FuelConsumedTotal;
    public long MemoryBytes;
    public long PeakMemoryBytes;
    public long WorkerRssBytes;
    public double WorkerCpuSeconds;
}
