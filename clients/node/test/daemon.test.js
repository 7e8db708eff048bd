// The client against a real connectias-sandboxd (one for this file) with packages made by the
// project's own CLI. Needs the .NET build: `dotnet build Connectias.Sandbox.sln` in the repository.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SandboxClient, SandboxError, GrpcStatus } from '../src/index.js';
import { startDaemon, makePackage, cli } from './support/daemon.js';

const HELLO_PERMISSIONS = ['storage', 'system_info'];
const HUGE_FUEL = 1_000_000_000_000;
const POLICY = {
  default: { permissions: HELLO_PERMISSIONS },
  plugins: {
    // Ample fuel and time: only the client's own deadline ends its calls.
    'com.test.node.sleeper': { limits: { fuel_per_call: HUGE_FUEL, timeout_ms: 20000 } },
  },
};

let daemon;
let client;

/** A signed package (trusted key) of a sample plugin with manifest id `id` and extra manifest fields. */
const signedPackage = (plugin, id, manifest = {}) => makePackage(daemon.dir, plugin, { id, ...manifest }, { signWith: daemon.key });
const loadHello = async (id, manifest = {}) => client.load(await readFile(await signedPackage('hello', id, { permissions: HELLO_PERMISSIONS, ...manifest })));

/** Asserts that `promise` rejects with a SandboxError of `reason` and gRPC `code`; returns the error. */
async function refused(promise, reason, code, pluginId) {
  let caught;
  await assert.rejects(promise, (error) => {
    caught = error;
    return true;
  });
  assert.ok(caught instanceof SandboxError, `expected a SandboxError, got ${caught?.stack ?? caught}`);
  assert.ok(caught instanceof Error);
  assert.equal(caught.reason, reason, `${caught}`);
  assert.equal(caught.code, code, `${caught} has status ${caught.codeName}`);
  assert.equal(typeof caught.metadata, 'object');
  assert.ok(caught.message.length > 0);
  if (pluginId !== undefined) assert.equal(caught.metadata.plugin_id, pluginId);
  return caught;
}

before(async () => {
  daemon = await startDaemon({ policy: POLICY });
  client = await SandboxClient.connect({ socket: daemon.socket });
});

after(async () => {
  client?.close();
  await daemon?.stop();
});

describe('loading', () => {
  it('loads a package sent as bytes and returns its plugin info once READY', async () => {
    const info = await loadHello('com.test.node.hello');
    assert.equal(info.pluginId, 'com.test.node.hello');
    assert.equal(info.name, 'hello');
    assert.equal(info.version, '1.0.0');
    assert.equal(info.state, 'READY');
    assert.deepEqual(info.grantedPermissions, HELLO_PERMISSIONS);
    assert.match(info.signerFingerprint, /^[0-9a-f]{64}$/);
    assert.ok(info.pid > 0);
    assert.ok(info.loadedAt instanceof Date && Math.abs(Date.now() - info.loadedAt.getTime()) < 60_000);
    assert.equal(typeof info.limits.fuelPerCall, 'number');
    assert.equal(info.limits.fuelPerCall, 1_000_000);
    assert.equal(info.usage.calls, 0);
  });

  it('loads a package by a path the daemon reads', async () => {
    const path = await signedPackage('hello', 'com.test.node.bypath', { permissions: HELLO_PERMISSIONS });
    const info = await client.load(path);
    assert.equal(info.pluginId, 'com.test.node.bypath');
    assert.equal(info.state, 'READY');
  });
});

describe('execute', () => {
  it('sends a Buffer as it is and returns the output as a Buffer with stats', async () => {
    const bytes = Buffer.from([0, 1, 2, 0xfe, 0xff, 0x80]);
    const { output, stats } = await client.execute('com.test.node.hello', 'echo', bytes);
    assert.ok(Buffer.isBuffer(output));
    assert.deepEqual(output, bytes);
    assert.ok(stats.fuelConsumed > 0 && stats.durationUs > 0 && stats.memoryBytes > 0, JSON.stringify(stats));
  });

  it('sends a string as UTF-8', async () => {
    const { output } = await client.execute('com.test.node.hello', 'greet', 'Ada Lovelace, Grüße');
    assert.equal(output.toString('utf8'), 'Hello, Ada Lovelace, Grüße!');
  });

  it('sends an object as JSON', async () => {
    const args = { city: 'Zürich', days: [1, 2, 3], nested: { ok: true } };
    const { output } = await client.execute('com.test.node.hello', 'echo', args);
    assert.deepEqual(JSON.parse(output.toString('utf8')), args);
  });

  it('sends no args as no bytes', async () => {
    const { output } = await client.execute('com.test.node.hello', 'echo');
    assert.equal(output.length, 0);
  });
});

describe('list and get', () => {
  it('list returns every loaded plugin with its state', async () => {
    const plugins = await client.list();
    const byId = new Map(plugins.map((p) => [p.pluginId, p]));
    assert.equal(byId.get('com.test.node.hello')?.state, 'READY');
    assert.equal(byId.get('com.test.node.bypath')?.state, 'READY');
  });

  it('get returns one plugin with its usage', async () => {
    const info = await client.get('com.test.node.hello');
    assert.equal(info.pluginId, 'com.test.node.hello');
    assert.equal(info.state, 'READY');
    assert.equal(info.usage.calls, 4);
    assert.equal(info.usage.failures, 0);
    assert.ok(info.usage.fuelConsumedTotal > 0);
  });
});

describe('upgrades and dependencies', () => {
  it('load with replace upgrades a loaded plugin; without it the same id is ALREADY_LOADED', async () => {
    const id = 'com.test.node.upgraded';
    await loadHello(id);
    const v2 = await signedPackage('hello', id, { permissions: HELLO_PERMISSIONS, version: '2.0.0' });
    await refused(client.load(await readFile(v2)), 'ALREADY_LOADED', GrpcStatus.ALREADY_EXISTS, id);
    const info = await client.load(await readFile(v2), { replace: true });
    assert.equal(info.version, '2.0.0');
    assert.equal((await client.get(id)).version, '2.0.0');
  });

  it('unload of a plugin others depend on is DEPENDENCY_NOT_MET naming them, unless cascade', async () => {
    await loadHello('com.test.node.base');
    await loadHello('com.test.node.app', { dependencies: ['com.test.node.base'] });
    const error = await refused(client.unload('com.test.node.base'), 'DEPENDENCY_NOT_MET', GrpcStatus.FAILED_PRECONDITION, 'com.test.node.base');
    assert.equal(error.metadata.dependents, 'com.test.node.app');
    await client.unload('com.test.node.base', { cascade: true });
    assert.equal((await client.get('com.test.node.app')).state, 'UNLOADED');
  });
});

describe('unload', () => {
  it('returns the cleanup report, and the plugin is UNLOADED and no longer runs', async () => {
    const report = await client.unload('com.test.node.bypath');
    assert.equal(report.pluginId, 'com.test.node.bypath');
    assert.deepEqual(report.issues, []);
    assert.equal(report.pluginCleanupCalled, true);
    assert.equal(report.pluginCleanupCode, 0);
    assert.equal(typeof report.durationUs, 'number');
    const info = await client.get('com.test.node.bypath');
    assert.equal(info.state, 'UNLOADED');
    assert.equal(info.pid, 0);
    await refused(client.execute('com.test.node.bypath', 'greet'), 'PLUGIN_NOT_FOUND', GrpcStatus.NOT_FOUND, 'com.test.node.bypath');
  });
});

describe('events', () => {
  it('is an async iterable of a plugin\'s state changes and audit records that ends when aborted', async () => {
    const id = 'com.test.node.watched';
    const path = await signedPackage('hello', id, { permissions: HELLO_PERMISSIONS });
    const stop = new AbortController();
    const seen = [];
    const events = client.events({ pluginId: id, signal: stop.signal });
    const watching = (async () => {
      for await (const event of events) {
        seen.push(event);
        if (event.payload === 'audit' && event.audit.event === 'PLUGIN_UNLOAD') stop.abort();
      }
      return 'ended';
    })();
    await new Promise((resolve) => setTimeout(resolve, 200)); // the daemon subscribes when the call arrives
    await client.load(path);
    await client.execute(id, 'greet', 'events');
    await client.unload(id);
    const timer = setTimeout(() => stop.abort(), 15_000);
    assert.equal(await watching, 'ended'); // the loop ended cleanly, without throwing
    clearTimeout(timer);

    const changes = seen.filter((e) => e.payload === 'stateChanged').map((e) => `${e.stateChanged.previous}->${e.stateChanged.current}`);
    assert.ok(changes.includes('LOADING->READY'), changes.join(', '));
    assert.ok(changes.includes('READY->UNLOADED'), changes.join(', '));
    const audits = seen.filter((e) => e.payload === 'audit').map((e) => e.audit.event);
    assert.ok(audits.includes('PLUGIN_LOAD'), audits.join(', '));
    assert.ok(audits.includes('PLUGIN_UNLOAD'), audits.join(', '));
    const load = seen.find((e) => e.payload === 'audit' && e.audit.event === 'PLUGIN_LOAD');
    assert.equal(JSON.parse(load.audit.detailsJson).version, '1.0.0');
    assert.match(load.audit.hash, /^[0-9a-f]{64}$/);
    for (const event of seen) {
      assert.equal(event.pluginId, id);
      assert.ok(event.time instanceof Date);
    }
    const seqs = seen.map((e) => e.seq);
    assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b));
  });

  it('ends cleanly when the client is closed', async () => {
    const other = await SandboxClient.connect({ socket: daemon.socket });
    const events = other.events();
    const watching = (async () => {
      for await (const event of events) void event;
      return 'ended';
    })();
    await new Promise((resolve) => setTimeout(resolve, 100));
    other.close();
    assert.equal(await watching, 'ended');
    await assert.rejects(other.list(), /closed/);
  });
});

describe('refusals are SandboxError with the SPEC reason', () => {
  it('INVALID_SIGNATURE for a package signed by a key the daemon does not trust', async () => {
    const stranger = join(daemon.dir, 'stranger');
    await cli('keygen', '-o', stranger);
    const path = await makePackage(daemon.dir, 'hello', { id: 'com.test.node.stranger', permissions: HELLO_PERMISSIONS }, { signWith: `${stranger}.key` });
    await refused(client.load(await readFile(path)), 'INVALID_SIGNATURE', GrpcStatus.PERMISSION_DENIED);
  });

  it('CORRUPTED_DATA for random bytes as a package', async () => {
    await refused(client.load(new Uint8Array(randomBytes(4096))), 'CORRUPTED_DATA', GrpcStatus.INVALID_ARGUMENT);
  });

  it('PLUGIN_NOT_FOUND for an unknown id, from execute, get and unload', async () => {
    const id = 'com.test.node.nobody';
    await refused(client.execute(id, 'greet'), 'PLUGIN_NOT_FOUND', GrpcStatus.NOT_FOUND, id);
    await refused(client.get(id), 'PLUGIN_NOT_FOUND', GrpcStatus.NOT_FOUND);
    await refused(client.unload(id), 'PLUGIN_NOT_FOUND', GrpcStatus.NOT_FOUND);
  });

  it('INVALID_COMMAND for a command the manifest does not declare', async () => {
    const id = 'com.test.node.declared';
    await loadHello(id, { commands: [{ name: 'greet', description: 'Hello, ARGS!' }] });
    await refused(client.execute(id, 'echo', 'x'), 'INVALID_COMMAND', GrpcStatus.INVALID_ARGUMENT, id);
    assert.equal((await client.execute(id, 'greet', 'declared')).output.toString(), 'Hello, declared!');
  });

  it('PLUGIN_ERROR with the plugin\'s code for hello\'s fail command', async () => {
    const error = await refused(client.execute('com.test.node.hello', 'fail'), 'PLUGIN_ERROR', GrpcStatus.UNKNOWN, 'com.test.node.hello');
    assert.equal(error.metadata.plugin_code, '42');
    assert.match(error.message, /failure requested by the caller/);
    assert.equal((await client.get('com.test.node.hello')).state, 'READY');
  });

  it('FUEL_EXHAUSTED for infinite_loop with the default limits', async () => {
    const id = 'com.test.node.spinner';
    await client.load(await readFile(await signedPackage('infinite_loop', id)));
    const error = await refused(client.execute(id, 'run'), 'FUEL_EXHAUSTED', GrpcStatus.RESOURCE_EXHAUSTED, id);
    assert.equal(error.metadata.limit, '1000000');
    assert.equal((await client.get(id)).state, 'TERMINATED');
  });

  it('MEMORY_LIMIT_EXCEEDED for grow_bomb past its memory limit', async () => {
    const id = 'com.test.node.bomb';
    await client.load(await readFile(await signedPackage('grow_bomb', id, { resource_limits: { memory_bytes: 16777216 } })));
    const error = await refused(client.execute(id, 'run'), 'MEMORY_LIMIT_EXCEEDED', GrpcStatus.RESOURCE_EXHAUSTED, id);
    assert.equal(error.metadata.limit, '16777216');
  });

  it('MEMORY_LIMIT_EXCEEDED at load for huge_memory', async () => {
    // Its manifest asks for the 1700 pages it declares (so `connectias pack` accepts it); the daemon's
    // policy caps memory at the 100 MiB default, under its initial memory.
    const id = 'com.test.node.huge';
    const pkg = await signedPackage('huge_memory', id, { resource_limits: { memory_bytes: 1700 * 65536 } });
    await refused(client.load(await readFile(pkg)), 'MEMORY_LIMIT_EXCEEDED', GrpcStatus.RESOURCE_EXHAUSTED, id);
  });

  it('TIMEOUT when the client\'s own deadline passes', async () => {
    const id = 'com.test.node.sleeper';
    const info = await client.load(await readFile(await signedPackage('infinite_loop', id, { resource_limits: { fuel_per_call: HUGE_FUEL, timeout_ms: 20000 } })));
    assert.equal(info.limits.timeoutMs, 20000);
    assert.equal(info.limits.fuelPerCall, HUGE_FUEL);
    const started = Date.now();
    const error = await refused(client.execute(id, 'run', undefined, { timeoutMs: 300 }), 'TIMEOUT', GrpcStatus.DEADLINE_EXCEEDED, id);
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= 250 && elapsed < 5000, `the call ended after ${elapsed} ms`);
    assert.equal(error.codeName, 'DEADLINE_EXCEEDED');
  });
});
