// Types of @connectias/sandbox-client (hand-written; the JavaScript is src/index.js).
// Field names are the proto's in camelCase; 64-bit integers are JS numbers; enums are their names;
// google.protobuf.Timestamp fields are Date (or null when unset).
import type { Client, status } from '@grpc/grpc-js';

export type PluginState = 'PLUGIN_STATE_UNSPECIFIED' | 'LOADING' | 'READY' | 'TERMINATED' | 'UNLOADED' | 'CRASHED';

/** The SPEC §4 reason names the daemon sends in ErrorInfo.reason. */
export type ErrorReason =
  | 'INVALID_SIGNATURE' | 'CORRUPTED_DATA' | 'UNSUPPORTED_VERSION' | 'PERMISSION_DENIED' | 'RESOURCE_EXHAUSTED'
  | 'DEPENDENCY_NOT_MET' | 'INIT_FAILED' | 'ALREADY_LOADED' | 'PLUGIN_NOT_FOUND' | 'FUEL_EXHAUSTED'
  | 'MEMORY_LIMIT_EXCEEDED' | 'TIMEOUT' | 'NETWORK_TIMEOUT' | 'INVALID_COMMAND' | 'SECURITY_VIOLATION'
  | 'OUTPUT_TOO_LARGE' | 'PLUGIN_ERROR' | 'PLUGIN_TRAPPED' | 'PLUGIN_CRASHED' | 'QUEUE_FULL' | 'AUDIT_LOG_FAILED';

/** A SandboxError's reason: a §4 name, or one of the client's own for failures the daemon did not describe. */
export type SandboxErrorReason = ErrorReason | 'DAEMON_UNAVAILABLE' | 'RPC_ERROR' | (string & {});

export declare const ErrorReasons: readonly ErrorReason[];
export declare const ERROR_DOMAIN: 'sandbox.connectias';
export declare const DAEMON_UNAVAILABLE: 'DAEMON_UNAVAILABLE';
export declare const RPC_ERROR: 'RPC_ERROR';
/** grpc-js's status codes, to compare with SandboxError.code. */
export declare const GrpcStatus: typeof status;

export interface EffectiveLimits {
  memoryBytes: number;
  fuelPerCall: number;
  timeoutMs: number;
  storageBytes: number;
  outputBytes: number;
  requestsPerMinute: number;
  maxBodyBytes: number;
  networkTimeoutMs: number;
}

export interface PluginUsage {
  calls: number;
  failures: number;
  fuelConsumedTotal: number;
  memoryBytes: number;
  peakMemoryBytes: number;
  workerRssBytes: number;
  workerCpuSeconds: number;
  networkRequests: number;
  networkBytesSent: number;
  networkBytesReceived: number;
  networkRefusals: number;
}

export interface CommandInfo {
  name: string;
  description: string;
}

export interface PluginInfo {
  pluginId: string;
  name: string;
  version: string;
  state: PluginState;
  /** Canonical names: 'network', 'storage', 'system_info'. */
  grantedPermissions: string[];
  limits: EffectiveLimits;
  /** Lower-case hex SHA-256 of the signer's SubjectPublicKeyInfo; '' for an unsigned package. */
  signerFingerprint: string;
  /** The worker's process id; 0 when no worker runs. */
  pid: number;
  usage: PluginUsage;
  author: string;
  description: string;
  commands: CommandInfo[];
  loadedAt: Date | null;
  /** For TERMINATED and CRASHED: the reason name that caused it. */
  stateReason: string;
  stateMessage: string;
  restarts: number;
  /** The effective allow-list (manifest ∩ policy). */
  allowedHosts: string[];
  dependencies: string[];
}

export interface ExecutionStats {
  fuelConsumed: number;
  durationUs: number;
  /** Size of the plugin's linear memory after the call. */
  memoryBytes: number;
}

export interface ExecuteResult {
  output: Buffer;
  stats: ExecutionStats;
}

export type CleanupIssueKind = 'CLEANUP_ISSUE_KIND_UNSPECIFIED' | 'RESOURCE_LEAK' | 'MEMORY_NOT_FREED' | 'NETWORK_CONNECTION_OPEN' | 'AUDIT_LOG_FAILED';

export interface CleanupReport {
  pluginId: string;
  /** Empty when cleanup found nothing wrong. */
  issues: { kind: CleanupIssueKind; detail: string }[];
  pluginCleanupCalled: boolean;
  pluginCleanupCode: number;
  durationUs: number;
}

export interface StateChanged {
  previous: PluginState;
  current: PluginState;
  /** The reason name when a failure caused the change, else ''. */
  reason: string;
  message: string;
}

export interface Violation {
  reason: string;
  message: string;
  metadata: Record<string, string>;
}

export interface AuditEvent {
  /** The audit record's sequence number and hash (SPEC §6). */
  seq: number;
  /** PLUGIN_LOAD, LOAD_REJECTED, PERMISSION_GRANT, ... */
  event: string;
  /** The record's details object as JSON text. */
  detailsJson: string;
  hash: string;
}

interface EventBase {
  /** Increases by one per event the daemon emits; a gap means this watcher fell behind. */
  seq: number;
  time: Date | null;
  pluginId: string;
}

/** One event; `payload` names the field that is set. */
export type SandboxEvent =
  | (EventBase & { payload: 'stateChanged'; stateChanged: StateChanged })
  | (EventBase & { payload: 'violation'; violation: Violation })
  | (EventBase & { payload: 'audit'; audit: AuditEvent });

export interface CallOptions {
  /** The call's deadline in milliseconds; passing it rejects with SandboxError reason TIMEOUT. */
  timeoutMs?: number;
}

export interface LoadOptions extends CallOptions {
  /** Upgrade a loaded plugin of the same id without a gap: its calls move to the new version once READY. */
  replace?: boolean;
}

export interface UnloadOptions extends CallOptions {
  /** First unload the loaded plugins that depend on this one; without it such an unload is DEPENDENCY_NOT_MET. */
  cascade?: boolean;
}

export interface ConnectOptions {
  /** The daemon's Unix socket; default {@link defaultSocketPath}(). */
  socket?: string;
  /** How long to wait for the daemon to answer the connection check (default 5000). */
  timeoutMs?: number;
}

export interface EventsOptions {
  /** Only this plugin's events; all when omitted or ''. */
  pluginId?: string;
  /** Aborting it ends the iteration cleanly. */
  signal?: AbortSignal;
}

/** Execute's args: bytes as they are, a string as UTF-8, anything else as its JSON text. */
export type ExecuteArgs = Uint8Array | ArrayBuffer | string | object | number | boolean | null | undefined;

export declare class SandboxError extends Error {
  constructor(reason: string, message: string, options?: { code?: number; metadata?: Record<string, string>; cause?: unknown });
  readonly name: 'SandboxError';
  /** The §4 reason ('PLUGIN_NOT_FOUND', ...), 'TIMEOUT' for a passed deadline, 'DAEMON_UNAVAILABLE' when no daemon answers, 'RPC_ERROR' otherwise. */
  reason: SandboxErrorReason;
  /** The gRPC status code (see GrpcStatus). */
  code: number;
  /** The ErrorInfo metadata: plugin_id and, where relevant, limit, used, plugin_code, permission, ... */
  metadata: Record<string, string>;
  /** The gRPC status code's name, e.g. 'NOT_FOUND'. */
  readonly codeName: string;
}

export declare class SandboxClient {
  private constructor();
  /** Connects and checks that a daemon answers; rejects with SandboxError DAEMON_UNAVAILABLE otherwise. */
  static connect(options?: ConnectOptions): Promise<SandboxClient>;
  /** The absolute path of the daemon's socket. */
  readonly socket: string;
  /** The grpc-js client underneath (its errors are not translated). */
  readonly raw: Client;
  /** A Buffer/Uint8Array is sent as the package's bytes; a string is a path the daemon reads. */
  load(bytesOrPath: Uint8Array | ArrayBuffer | string, options?: LoadOptions): Promise<PluginInfo>;
  execute(pluginId: string, command: string, args?: ExecuteArgs, options?: CallOptions): Promise<ExecuteResult>;
  unload(pluginId: string, options?: UnloadOptions): Promise<CleanupReport>;
  list(options?: CallOptions): Promise<PluginInfo[]>;
  get(pluginId: string, options?: CallOptions): Promise<PluginInfo>;
  /** Starts watching at once; ends cleanly on abort, break or close(). */
  events(options?: EventsOptions): AsyncGenerator<SandboxEvent, void, undefined>;
  /** Ends every open event stream and closes the connection. */
  close(): void;
}

/** `$XDG_STATE_HOME/connectias-sandbox/run/sandboxd.sock`, or under `~/.local/state` when XDG_STATE_HOME is unset. */
export declare function defaultSocketPath(env?: Record<string, string | undefined>): string;
/** The bytes Execute sends for `args`. */
export declare function encodeArgs(args: ExecuteArgs): Buffer;
