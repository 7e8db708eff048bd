// Test support: a real connectias-sandboxd in a temporary state directory, and signed packages of the
// sample plugins made with the project's own CLI. Both come from the .NET build of the repository
// (`dotnet build Connectias.Sandbox.sln` first); the environment variables below point elsewhere.
import { spawn, execFile } from 'node:child_process';
import { mkdtemp, mkdir, writeFile, copyFile, rm, access } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** The repository root: clients/node/test/support/../../../.. */
export const REPO = resolve(fileURLToPath(new URL('../../../../', import.meta.url)));

const BUILD = join('bin', 'Debug', 'net10.0');
/** CONNECTIAS_SANDBOXD_DLL: the daemon; default: the Debug build in this repository. */
export const DAEMON_DLL = process.env.CONNECTIAS_SANDBOXD_DLL || join(REPO, 'src', 'Connectias.Sandbox.Daemon', BUILD, 'connectias-sandboxd.dll');
/** CONNECTIAS_CLI_DLL: the `connectias` CLI; default: the Debug build in this repository. */
export const CLI_DLL = process.env.CONNECTIAS_CLI_DLL || join(REPO, 'src', 'Connectias.Sandbox.Cli', BUILD, 'connectias.dll');
/** CONNECTIAS_SAMPLE_PLUGINS: the built sample modules (*.wasm); default: samples/plugins/out/plugins. */
export const PLUGINS_DIR = process.env.CONNECTIAS_SAMPLE_PLUGINS || join(REPO, 'samples', 'plugins', 'out', 'plugins');
/** CONNECTIAS_SANDBOX_MODE: the daemon's --sandbox mode; default none (the tests are about the API, not bubblewrap). */
export const SANDBOX_MODE = process.env.CONNECTIAS_SANDBOX_MODE || 'none';

const DOTNET_ENV = { ...process.env, DOTNET_CLI_TELEMETRY_OPTOUT: '1', DOTNET_NOLOGO: '1' };
const START_TIMEOUT_MS = 60_000;

async function mustExist(path, what) {
  try {
    await access(path);
  } catch {
    throw new Error(`${what} not found at ${path}: run \`dotnet build Connectias.Sandbox.sln\` in ${REPO} first (or set the environment variable)`);
  }
}

/** Runs the `connectias` CLI to completion; rejects with its stderr when it fails. */
export async function cli(...args) {
  await mustExist(CLI_DLL, 'the connectias CLI');
  try {
    return (await run('dotnet', [CLI_DLL, ...args], { env: DOTNET_ENV })).stdout;
  } catch (error) {
    throw new Error(`connectias ${args.join(' ')} failed: ${error.stderr || error.message}`);
  }
}

/**
 * A daemon with its own state directory, a trust store holding one fresh test key, and `policy`
 * (an object written as policy.json). Resolves once its log says it listens.
 */
export async function startDaemon({ policy }) {
  await mustExist(DAEMON_DLL, 'connectias-sandboxd');
  const dir = await mkdtemp(join(tmpdir(), 'connectias-node-'));
  const trust = join(dir, 'trust');
  await mkdir(trust);
  const key = join(dir, 'trusted');
  await cli('keygen', '-o', key);
  await copyFile(`${key}.pub`, join(trust, 'test.pub'));
  const policyPath = join(dir, 'policy.json');
  await writeFile(policyPath, JSON.stringify(policy));

  const child = spawn('dotnet', [DAEMON_DLL, '--state-dir', join(dir, 'state'), '--trust-dir', trust, '--policy', policyPath,
    '--no-dev-key', '--sandbox', SANDBOX_MODE], { env: DOTNET_ENV, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  const exited = new Promise((resolveExit) => child.once('exit', (code, signal) => resolveExit({ code, signal })));
  const onData = (chunk) => { log += chunk; };
  child.stdout.setEncoding('utf8').on('data', onData);
  child.stderr.setEncoding('utf8').on('data', onData);
  // The log line, not the socket file: the daemon says it listens once the socket is ready.
  await new Promise((resolveStart, reject) => {
    let settled = false;
    const settle = (error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      child.stdout.off('data', check);
      child.off('exit', onExit);
      child.off('error', settle);
      if (error) {
        child.kill('SIGKILL');
        reject(error);
      } else resolveStart();
    };
    const timer = setTimeout(() => settle(new Error(`the daemon did not start within ${START_TIMEOUT_MS} ms:\n${log}`)), START_TIMEOUT_MS);
    const check = () => { if (log.includes('listening on')) settle(); };
    const onExit = (code, signal) => settle(new Error(`the daemon exited at start (${code ?? signal}):\n${log}`));
    child.stdout.on('data', check);
    child.once('exit', onExit);
    child.once('error', settle);
  });

  return {
    dir,
    key: `${key}.key`,
    socket: join(dir, 'state', 'run', 'sandboxd.sock'),
    get log() {
      return log;
    },
    /** SIGTERM, then SIGKILL after 20 s; removes the directory. */
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
        await exited;
        clearTimeout(timer);
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * A package of the sample plugin `plugin` (samples/plugins/{c,wat}/PLUGIN.*) with a manifest of
 * `manifest`, packed with `connectias pack` and, if `signWith` names a private key, signed with
 * `connectias sign`. Returns the package's path.
 */
export async function makePackage(workDir, plugin, manifest, { signWith } = {}) {
  const source = join(PLUGINS_DIR, `${plugin}.wasm`);
  await mustExist(source, `the sample plugin ${plugin}`);
  const dir = await mkdtemp(join(workDir, `${plugin}-`));
  await copyFile(source, join(dir, 'plugin.wasm'));
  await writeFile(join(dir, 'plugin.json'), JSON.stringify({ name: plugin, version: '1.0.0', ...manifest }));
  const zip = `${dir}.zip`;
  await cli('pack', dir, '-o', zip);
  if (signWith) await cli('sign', zip, '--key', signWith);
  return zip;
}
