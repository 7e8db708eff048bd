// Compiled (never run) by types.test.js: the hand-written index.d.ts describes the API as used here.
import { SandboxClient, SandboxError, GrpcStatus, defaultSocketPath } from '@connectias/sandbox-client';
import type { PluginInfo, CleanupReport, SandboxEvent, ExecuteResult } from '@connectias/sandbox-client';

export async function usage(): Promise<void> {
  const client = await SandboxClient.connect({ socket: defaultSocketPath() });
  const info: PluginInfo = await client.load('/tmp/hello.zip');
  await client.load(new Uint8Array([1, 2]));
  const state: 'READY' | 'LOADING' | 'TERMINATED' | 'UNLOADED' | 'CRASHED' | 'PLUGIN_STATE_UNSPECIFIED' = info.state;
  const when: Date | null = info.loadedAt;
  const result: ExecuteResult = await client.execute(info.pluginId, 'greet', { name: 'Ada' }, { timeoutMs: 1000 });
  await client.execute(info.pluginId, 'echo', Buffer.from('x'));
  await client.execute(info.pluginId, 'greet', 'Ada');
  await client.execute(info.pluginId, 'count');
  const text: string = result.output.toString('utf8');
  const fuel: number = result.stats.fuelConsumed;
  const plugins: PluginInfo[] = await client.list();
  const one: PluginInfo = await client.get(info.pluginId);
  const report: CleanupReport = await client.unload(info.pluginId);
  const kinds: string[] = report.issues.map((issue) => issue.kind);
  const stop = new AbortController();
  for await (const event of client.events({ pluginId: info.pluginId, signal: stop.signal })) {
    const e: SandboxEvent = event;
    if (e.payload === 'stateChanged') console.log(e.stateChanged.current);
    else if (e.payload === 'audit') console.log(e.audit.event, e.audit.detailsJson);
    else console.log(e.violation.reason, e.violation.metadata.limit);
  }
  try {
    await client.execute('com.example.nobody', 'run');
  } catch (error) {
    if (error instanceof SandboxError && error.reason === 'PLUGIN_NOT_FOUND' && error.code === GrpcStatus.NOT_FOUND) {
      const id: string | undefined = error.metadata.plugin_id;
      console.log(id, error.message, error.codeName);
    }
  }
  // @ts-expect-error load takes bytes or a path
  await client.load(42);
  // @ts-expect-error execute needs a command
  await client.execute(info.pluginId);
  client.close();
  console.log(state, when, text, fuel, plugins, one, kinds);
}
