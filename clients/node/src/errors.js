// SandboxError and the translation of a gRPC failure into one (SPEC §4 and §8).
import { status as GrpcStatus } from '@grpc/grpc-js';
import protobuf from 'protobufjs';
import { fileURLToPath } from 'node:url';

/** The ErrorInfo domain the daemon puts on every refusal. */
export const ERROR_DOMAIN = 'sandbox.connectias';

/** A reason this client gives when no daemon answers on the socket (as the FFI bridge, SPEC §7). */
export const DAEMON_UNAVAILABLE = 'DAEMON_UNAVAILABLE';

/** A reason this client gives to a gRPC failure that carries no sandbox ErrorInfo and is neither a deadline nor an unreachable daemon. */
export const RPC_ERROR = 'RPC_ERROR';

// keepCase: field names as in the .proto (and as in protobufjs's bundled google.protobuf.Any: type_url).
const statusRoot = new protobuf.Root().loadSync(fileURLToPath(new URL('../protos/google/rpc/error_details.proto', import.meta.url)), { keepCase: true });
const StatusMessage = statusRoot.lookupType('google.rpc.Status');
const ErrorInfoMessage = statusRoot.lookupType('google.rpc.ErrorInfo');
const ERROR_INFO_TYPE = 'google.rpc.ErrorInfo';

/**
 * A refusal by the daemon, a call's deadline passing (reason TIMEOUT), or the daemon not being
 * reachable (reason DAEMON_UNAVAILABLE).
 */
export class SandboxError extends Error {
  /**
   * @param {string} reason the SPEC §4 reason name, e.g. 'PLUGIN_NOT_FOUND'
   * @param {string} message
   * @param {{ code?: number, metadata?: Record<string, string>, cause?: unknown }} [options]
   */
  constructor(reason, message, { code = GrpcStatus.UNKNOWN, metadata = {}, cause } = {}) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'SandboxError';
    this.reason = reason;
    this.code = code;
    this.metadata = metadata;
  }

  /** The gRPC status code's name, e.g. 'NOT_FOUND'. */
  get codeName() {
    return GrpcStatus[this.code] ?? String(this.code);
  }

  toString() {
    return `${this.name}: ${this.reason}: ${this.message}`;
  }
}

/**
 * The google.rpc.Status in a gRPC error's grpc-status-details-bin trailer, decoded: its message and
 * the sandbox ErrorInfo, or null when there is none (or it does not decode).
 * @param {any} error a grpc-js ServiceError
 * @returns {{ message: string, reason: string, metadata: Record<string, string> } | null}
 */
export function sandboxErrorInfo(error) {
  const values = typeof error?.metadata?.get === 'function' ? error.metadata.get('grpc-status-details-bin') : [];
  for (const value of values) {
    if (!Buffer.isBuffer(value)) continue;
    let status;
    try {
      status = StatusMessage.decode(value);
    } catch {
      continue;
    }
    for (const detail of status.details ?? []) {
      const typeUrl = detail.type_url ?? '';
      if (typeUrl.slice(typeUrl.lastIndexOf('/') + 1) !== ERROR_INFO_TYPE) continue;
      let info;
      try {
        info = ErrorInfoMessage.decode(detail.value);
      } catch {
        continue;
      }
      if (info.domain !== ERROR_DOMAIN) continue;
      return { message: status.message || error.details || '', reason: info.reason, metadata: { ...info.metadata } };
    }
  }
  return null;
}

/**
 * Turns a grpc-js error into a SandboxError: the daemon's ErrorInfo when it sent one; otherwise
 * DEADLINE_EXCEEDED is TIMEOUT (the caller's deadline, SPEC §8), UNAVAILABLE is DAEMON_UNAVAILABLE,
 * and any other status is RPC_ERROR. Anything that is not a gRPC error is returned unchanged.
 * @param {any} error
 * @param {{ socket: string, pluginId?: string, timeoutMs?: number }} context
 */
export function translateError(error, context) {
  if (error instanceof SandboxError || typeof error?.code !== 'number' || error.metadata === undefined) return error;
  const info = sandboxErrorInfo(error);
  if (info !== null) return new SandboxError(info.reason, info.message, { code: error.code, metadata: info.metadata, cause: error });
  const metadata = context.pluginId ? { plugin_id: context.pluginId } : {};
  const details = error.details || error.message;
  switch (error.code) {
    case GrpcStatus.DEADLINE_EXCEEDED: {
      const deadline = context.timeoutMs === undefined ? 'the deadline' : `the deadline of ${context.timeoutMs} ms`;
      return new SandboxError('TIMEOUT', `${deadline} passed before connectias-sandboxd answered (${details})`, { code: error.code, metadata, cause: error });
    }
    case GrpcStatus.UNAVAILABLE:
      return new SandboxError(DAEMON_UNAVAILABLE, `cannot reach connectias-sandboxd at ${context.socket}: ${details}`, { code: error.code, metadata, cause: error });
    default:
      return new SandboxError(RPC_ERROR, `${GrpcStatus[error.code] ?? error.code}: ${details}`, { code: error.code, metadata, cause: error });
  }
}
