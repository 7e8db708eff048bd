// The package itself, without a daemon: its proto copy, what it reads at run time, argument encoding,
// the default socket, error translation and connecting where no daemon listens.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile, mkdtemp, cp, symlink, rm } from 'node:fs/promises';
import { tmpdir, homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';
import { SandboxClient, SandboxError, GrpcStatus, defaultSocketPath, encodeArgs, ErrorReasons } from '../src/index.js';
import { translateError } from '../src/errors.js';
import { REPO } from './support/daemon.js';

const PACKAGE = fileURLToPath(new URL('..', import.meta.url));

test('the package\'s plugin_host.proto is the repository\'s protos/ file, byte for byte', async () => {
  const copy = await readFile(join(PACKAGE, 'protos', 'connectias', 'sandbox', 'v1', 'plugin_host.proto'));
  const original = await readFile(join(REPO, 'protos', 'connectias', 'sandbox', 'v1', 'plugin_host.proto'));
  assert.ok(copy.equals(original),
    'clients/node/protos/connectias/sandbox/v1/plugin_host.proto differs from protos/connectias/sandbox/v1/plugin_host.proto: copy it again');
});

test('ErrorReasons lists every reason of the proto\'s ErrorReason enum', async () => {
  const proto = await readFile(join(REPO, 'protos', 'connectias', 'sandbox', 'v1', 'plugin_host.proto'), 'utf8');
  const block = proto.slice(proto.indexOf('enum ErrorReason {'));
  const names = [...block.slice(0, block.indexOf('}')).matchAll(/^\s+([A-Z_]+) = [1-9]\d*;/gm)].map((m) => m[1]);
  // AUDIT_LOG_FAILED is a §4 reason the enum does not list.
  assert.deepEqual(ErrorReasons.filter((r) => r !== 'AUDIT_LOG_FAILED'), names);
});

test('the package reads nothing outside itself at run time (a copy elsewhere loads)', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'connectias-node-package-'));
  try {
    for (const part of ['package.json', 'src', 'protos']) await cp(join(PACKAGE, part), join(dir, part), { recursive: true });
    await symlink(join(PACKAGE, 'node_modules'), join(dir, 'node_modules'));
    const script = "const m = await import('./src/index.js'); console.log(typeof m.SandboxClient.connect, m.encodeArgs({a:1}).toString());";
    const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], { cwd: dir });
    assert.equal(stdout.trim(), 'function {"a":1}');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('execute args: bytes as they are, a string as UTF-8, an object as JSON, nothing as no bytes', () => {
  assert.deepEqual(encodeArgs(Buffer.from([0, 255, 1])), Buffer.from([0, 255, 1]));
  assert.deepEqual(encodeArgs(new Uint8Array([7, 8, 9]).subarray(1)), Buffer.from([8, 9]));
  assert.deepEqual(encodeArgs('Grüße'), Buffer.from('Grüße', 'utf8'));
  assert.deepEqual(encodeArgs({ city: 'Zürich', days: [1, 2] }), Buffer.from('{"city":"Zürich","days":[1,2]}', 'utf8'));
  assert.deepEqual(encodeArgs(42), Buffer.from('42'));
  assert.equal(encodeArgs(undefined).length, 0);
  assert.equal(encodeArgs(null).length, 0);
  assert.throws(() => encodeArgs(() => 1), TypeError);
});

test('the default socket is the default daemon\'s: under XDG_STATE_HOME, else ~/.local/state', () => {
  assert.equal(defaultSocketPath({ XDG_STATE_HOME: '/var/x' }), '/var/x/connectias-sandbox/run/sandboxd.sock');
  assert.equal(defaultSocketPath({ XDG_STATE_HOME: '' }), join(homedir(), '.local/state/connectias-sandbox/run/sandboxd.sock'));
  assert.equal(defaultSocketPath({}), join(homedir(), '.local/state/connectias-sandbox/run/sandboxd.sock'));
});

/** A grpc-js style error carrying a google.rpc.Status with the given ErrorInfo. */
function grpcError(code, message, errorInfo) {
  const root = new protobuf.Root().loadSync(join(PACKAGE, 'protos', 'google', 'rpc', 'error_details.proto'), { keepCase: true });
  const info = root.lookupType('google.rpc.ErrorInfo');
  const status = root.lookupType('google.rpc.Status');
  const bytes = status.encode(status.create({
    code, message,
    details: [{ type_url: 'type.googleapis.com/google.rpc.ErrorInfo', value: info.encode(info.create(errorInfo)).finish() }],
  })).finish();
  const metadata = new grpc.Metadata();
  metadata.set('grpc-status-details-bin', Buffer.from(bytes));
  return Object.assign(new Error(`${code} ${message}`), { code, details: message, metadata });
}

test('a status with sandbox ErrorInfo becomes SandboxError with its reason, code, metadata and message', () => {
  const cause = grpcError(GrpcStatus.RESOURCE_EXHAUSTED, 'plugin com.a.b ran out of fuel',
    { reason: 'FUEL_EXHAUSTED', domain: 'sandbox.connectias', metadata: { plugin_id: 'com.a.b', limit: '1000000' } });
  const error = translateError(cause, { socket: '/s' });
  assert.ok(error instanceof SandboxError && error instanceof Error);
  assert.equal(error.name, 'SandboxError');
  assert.equal(error.reason, 'FUEL_EXHAUSTED');
  assert.equal(error.code, GrpcStatus.RESOURCE_EXHAUSTED);
  assert.equal(error.codeName, 'RESOURCE_EXHAUSTED');
  assert.deepEqual(error.metadata, { plugin_id: 'com.a.b', limit: '1000000' });
  assert.equal(error.message, 'plugin com.a.b ran out of fuel');
  assert.equal(error.cause, cause);
  assert.equal(String(error), 'SandboxError: FUEL_EXHAUSTED: plugin com.a.b ran out of fuel');
});

test('ErrorInfo of another domain is not a sandbox reason; statuses without one map to TIMEOUT, DAEMON_UNAVAILABLE, RPC_ERROR', () => {
  const foreign = translateError(grpcError(GrpcStatus.NOT_FOUND, 'nope', { reason: 'PLUGIN_NOT_FOUND', domain: 'example.com' }), { socket: '/s' });
  assert.equal(foreign.reason, 'RPC_ERROR');
  assert.equal(foreign.code, GrpcStatus.NOT_FOUND);
  const bare = (code) => Object.assign(new Error('x'), { code, details: 'detail', metadata: new grpc.Metadata() });
  const timeout = translateError(bare(GrpcStatus.DEADLINE_EXCEEDED), { socket: '/s', pluginId: 'com.a.b', timeoutMs: 300 });
  assert.equal(timeout.reason, 'TIMEOUT');
  assert.deepEqual(timeout.metadata, { plugin_id: 'com.a.b' });
  assert.match(timeout.message, /300 ms/);
  const unavailable = translateError(bare(GrpcStatus.UNAVAILABLE), { socket: '/s' });
  assert.equal(unavailable.reason, 'DAEMON_UNAVAILABLE');
  assert.match(unavailable.message, /\/s/);
  const plain = new TypeError('not grpc');
  assert.equal(translateError(plain, { socket: '/s' }), plain);
});

test('connect rejects with DAEMON_UNAVAILABLE, promptly, where no daemon listens', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'connectias-node-nodaemon-'));
  try {
    const started = Date.now();
    await assert.rejects(SandboxClient.connect({ socket: join(dir, 'sandboxd.sock'), timeoutMs: 3000 }), (error) => {
      assert.ok(error instanceof SandboxError);
      assert.equal(error.reason, 'DAEMON_UNAVAILABLE');
      assert.match(error.message, /no connectias-sandboxd answers at .*sandboxd\.sock/);
      return true;
    });
    assert.ok(Date.now() - started < 3000, 'connect gave up before its deadline');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
