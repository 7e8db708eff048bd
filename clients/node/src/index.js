// @connectias/sandbox-client: a client for connectias-sandboxd (SPEC §4 API, §8 client libraries).
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SandboxError, translateError, DAEMON_UNAVAILABLE, RPC_ERROR, ERROR_DOMAIN, sandboxErrorInfo } from './errors.js';

export { SandboxError, DAEMON_UNAVAILABLE, RPC_ERROR, ERROR_DOMAIN };
export const GrpcStatus = grpc.status;

/** The §4 reason names, in the order of the proto's ErrorReason enum. */
export const ErrorReasons = Object.freeze([
  'INVALID_SIGNATURE', 'CORRUPTED_DATA', 'UNSUPPORTED_VERSION', 'PERMISSION_DENIED', 'RESOURCE_EXHAUSTED',
  'DEPENDENCY_NOT_MET', 'INIT_FAILED', 'ALREADY_LOADED', 'PLUGIN_NOT_FOUND', 'FUEL_EXHAUSTED',
  'MEMORY_LIMIT_EXCEEDED', 'TIMEOUT', 'NETWORK_TIMEOUT', 'INVALID_COMMAND', 'SECURITY_VIOLATION',
  'OUTPUT_TOO_LARGE', 'PLUGIN_ERROR', 'PLUGIN_TRAPPED', 'PLUGIN_CRASHED', 'QUEUE_FULL', 'AUDIT_LOG_FAILED',
]);

/** Large enough for a whole package (64 MiB) or a plugin's largest output, as the daemon and the C# client allow. */
const MAX_MESSAGE_BYTES = 80 * 1024 * 1024;
const DEFAULT_CONNECT_TIMEOUT_MS = 5000;

/** The loader options: camelCase fields, 64-bit integers as JS numbers, enums as their names, every field present. */
const PROTO_LOADER_OPTIONS = Object.freeze({
  keepCase: false,
  longs: Number,
  enums: String,
  bytes: Buffer,
  defaults: true,
  arrays: true,
  objects: true,
  oneofs: true,
  includeDirs: [fileURLToPath(new URL('../protos', import.meta.url))],
});

const packageDefinition = protoLoader.loadSync('connectias/sandbox/v1/plugin_host.proto', PROTO_LOADER_OPTIONS);
const PluginHostClient = grpc.loadPackageDefinition(packageDefinition).connectias.sandbox.v1.PluginHost;

/**
 * The socket a daemon started with no flags listens on:
 * `$XDG_STATE_HOME/connectias-sandbox/run/sandboxd.sock`, or `~/.local/state/...` when XDG_STATE_HOME is unset or empty.
 */
export function defaultSocketPath(env = process.env) {
  const stateHome = env.XDG_STATE_HOME ? env.XDG_STATE_HOME : join(homedir(), '.local', 'state');
  return join(stateHome, 'connectias-sandbox', 'run', 'sandboxd.sock');
}

/**
 * The bytes of an Execute call's args: a Buffer/Uint8Array as is, a string as UTF-8, undefined or null
 * as no bytes, anything else (an object, an array, a number, ...) as its JSON text.
 */
export function encodeArgs(args) {
  if (args === undefined || args === null) return Buffer.alloc(0);
  if (Buffer.isBuffer(args)) return args;
  if (args instanceof Uint8Array) return Buffer.from(args.buffer, args.byteOffset, args.byteLength);
  if (args instanceof ArrayBuffer) return Buffer.from(args);
  if (typeof args === 'string') return Buffer.from(args, 'utf8');
  const json = JSON.stringify(args);
  if (json === undefined) throw new TypeError(`args of type ${typeof args} cannot be sent as JSON`);
  return Buffer.from(json, 'utf8');
}

function toDate(timestamp) {
  if (timestamp === null || timestamp === undefined) return null;
  return new Date(Number(timestamp.seconds) * 1000 + Math.floor(Number(timestamp.nanos) / 1e6));
}

function pluginInfo(info) {
  return { ...info, loadedAt: toDate(info.loadedAt) };
}

function sandboxEvent(event) {
  return { ...event, time: toDate(event.time) };
}

/** A connection to connectias-sandboxd. Every refusal rejects with a {@link SandboxError}. */
export class SandboxClient {
  #raw;
  #socket;
  #closed = false;
  /** @type {Set<{ cancel(): void }>} open WatchEvents calls, cancelled by close() */
  #streams = new Set();

  /** Use {@link SandboxClient.connect}. */
  constructor(raw, socket) {
    this.#raw = raw;
    this.#socket = socket;
  }

  /**
   * Connects to the daemon's Unix socket (by default the one a default daemon listens on) and checks
   * that a daemon answers there; rejects with SandboxError DAEMON_UNAVAILABLE if none does within timeoutMs.
   */
  static async connect({ socket = defaultSocketPath(), timeoutMs = DEFAULT_CONNECT_TIMEOUT_MS } = {}) {
    const path = resolve(socket);
    const raw = new PluginHostClient(`unix:${path}`, grpc.credentials.createInsecure(), {
      'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
      'grpc.max_send_message_length': MAX_MESSAGE_BYTES,
      // The target is a socket file, not a host name: send :authority localhost, as the C# client does.
      'grpc.default_authority': 'localhost',
    });
    const client = new SandboxClient(raw, path);
    try {
      await client.#unary('listPlugins', {}, { timeoutMs });
    } catch (error) {
      raw.close();
      // Nothing listens, something that is not the daemon answers, or nothing answers in time.
      if (error instanceof SandboxError && !sandboxErrorInfo(error.cause)) {
        throw new SandboxError(DAEMON_UNAVAILABLE, `no connectias-sandboxd answers at ${path}: ${error.cause?.details || error.message}`, { code: error.code, cause: error });
      }
      throw error;
    }
    return client;
  }

  /** The absolute path of the daemon's socket. */
  get socket() {
    return this.#socket;
  }

  /** The grpc-js PluginHost client underneath, for anything this wrapper does not cover (its errors are not translated). */
  get raw() {
    return this.#raw;
  }

  /**
   * Loads a package and returns its plugin info once READY: a Buffer/Uint8Array is sent as the package's
   * bytes; a string is a path on the daemon's machine that the daemon reads (made absolute against this process's cwd).
   * With replace, a loaded plugin of the same id is upgraded without a gap (SPEC §4).
   */
  async load(bytesOrPath, { timeoutMs, replace = false } = {}) {
    let request;
    if (typeof bytesOrPath === 'string') request = { path: resolve(bytesOrPath), replace };
    else if (bytesOrPath instanceof Uint8Array || bytesOrPath instanceof ArrayBuffer) request = { package: encodeArgs(bytesOrPath), replace };
    else throw new TypeError('load() takes the package as a Buffer/Uint8Array or a path string');
    const response = await this.#unary('loadPlugin', request, { timeoutMs });
    return pluginInfo(response.plugin);
  }

  /**
   * Runs one command. args: a Buffer/Uint8Array as is, a string as UTF-8, an object as JSON. With
   * timeoutMs the call has that deadline, and passing it rejects with SandboxError TIMEOUT.
   * @returns {Promise<{ output: Buffer, stats: { fuelConsumed: number, durationUs: number, memoryBytes: number } }>}
   */
  async execute(pluginId, command, args, { timeoutMs } = {}) {
    const request = { pluginId, command, args: encodeArgs(args) };
    const response = await this.#unary('execute', request, { timeoutMs, pluginId });
    return { output: response.output, stats: response.stats };
  }

  /**
   * Unloads a plugin and returns the cleanup report. A plugin that loaded plugins depend on is refused
   * (DEPENDENCY_NOT_MET) unless cascade, which unloads them first.
   */
  async unload(pluginId, { timeoutMs, cascade = false } = {}) {
    const response = await this.#unary('unloadPlugin', { pluginId, cascade }, { timeoutMs, pluginId });
    return response.report;
  }

  /** Every plugin the daemon knows (recently unloaded ones included, as UNLOADED). */
  async list({ timeoutMs } = {}) {
    const response = await this.#unary('listPlugins', {}, { timeoutMs });
    return response.plugins.map(pluginInfo);
  }

  /** One plugin's info; rejects with PLUGIN_NOT_FOUND for an id the daemon does not know. */
  async get(pluginId, { timeoutMs } = {}) {
    return pluginInfo(await this.#unary('getPlugin', { pluginId }, { timeoutMs, pluginId }));
  }

  /**
   * Lifecycle changes, violations and audit records as they happen, as an async iterable. The watch
   * starts at once (not at the first iteration); it ends cleanly when `signal` aborts, when the loop is
   * left (break/return) or when the client is closed, and throws a SandboxError if the daemon goes away.
   */
  events({ pluginId = '', signal } = {}) {
    this.#assertOpen();
    const call = this.#raw.watchEvents({ pluginId });
    const stream = { cancelled: false, cancel: () => { stream.cancelled = true; call.cancel(); } };
    this.#streams.add(stream);
    const onAbort = () => stream.cancel();
    if (signal?.aborted) stream.cancel();
    else signal?.addEventListener('abort', onAbort, { once: true });
    // A stream that fails before anyone iterates must not be an unhandled 'error' event.
    call.on('error', () => {});
    const socket = this.#socket;
    const streams = this.#streams;
    async function* iterate() {
      try {
        for await (const event of call) yield sandboxEvent(event);
      } catch (error) {
        if (stream.cancelled && error?.code === grpc.status.CANCELLED) return;
        throw translateError(error, { socket, pluginId: pluginId || undefined });
      } finally {
        signal?.removeEventListener('abort', onAbort);
        streams.delete(stream);
        if (!stream.cancelled) stream.cancel();
      }
    }
    return iterate();
  }

  /** Ends every open event stream and closes the connection. Idempotent. */
  close() {
    if (this.#closed) return;
    this.#closed = true;
    for (const stream of this.#streams) stream.cancel();
    this.#streams.clear();
    this.#raw.close();
  }

  #assertOpen() {
    if (this.#closed) throw new Error('this SandboxClient is closed');
  }

  #unary(method, request, { timeoutMs, pluginId }) {
    this.#assertOpen();
    if (timeoutMs !== undefined && !(Number.isFinite(timeoutMs) && timeoutMs > 0)) {
      return Promise.reject(new RangeError(`timeoutMs must be a positive number of milliseconds, not ${timeoutMs}`));
    }
    const options = timeoutMs === undefined ? {} : { deadline: new Date(Date.now() + timeoutMs) };
    return new Promise((resolvePromise, reject) => {
      this.#raw[method](request, new grpc.Metadata(), options, (error, response) => {
        if (error) reject(translateError(error, { socket: this.#socket, pluginId, timeoutMs }));
        else resolvePromise(response);
      });
    });
  }
}
