/**
 * What the HTTP benches share: a scratch embedded PostgreSQL with the app's roles and migrations,
 * the app's pools and session store, sign-in through the real forms, autocannon in a child process,
 * and a load run that prints req/s, p50, p99 and CPU per request. 127.0.0.1 only; bounded in time.
 */
import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { spawn } from 'node:child_process';
import type autocannon from 'autocannon';
import type { Knex } from 'knex';
import type { Store } from 'express-session';
import { generate } from 'otplib';
import { createSessionStore } from '../src/auth/session.js';
import { createLogger } from '../src/config/logger.js';
import { startEmbeddedPostgres } from '../src/db/embedded.js';
import { createKnex } from '../src/db/knex.js';
import { OWNER_ROLE, RUNTIME_ROLE, createDatabase, provisionRoles, urlFor } from '../src/db/provision.js';
import { createDb, type Db } from '../src/db/tenant.js';
import { freePort } from '../test/support/free-port.js';
import { STAFF_PASSWORD } from '../test/support/staff.js';

const require = createRequire(import.meta.url);
/** Concurrent connections of every load run (BENCH_CONNECTIONS, default 16). */
export const connections = Number(process.env.BENCH_CONNECTIONS ?? 16);
export const logger = createLogger('warn');

export interface BenchCluster {
  dir: string;
  pg: Awaited<ReturnType<typeof startEmbeddedPostgres>>;
  runtimeUrl: string;
  owner: Knex;
  app: Knex;
  db: Db;
  store: Store;
  listen(handler: http.RequestListener): Promise<string>;
  close(): Promise<void>;
}

/** A scratch cluster and database named `name`, roles provisioned (migrations are the caller's). */
export async function benchCluster(name: string, options: { settings?: Record<string, string> } = {}): Promise<BenchCluster> {
  const dir = await mkdtemp(path.join(os.tmpdir(), `enamel-bench-${name}-`));
  await chmod(dir, 0o711); // the embedded server's postgres user must pass through it
  const pg = await startEmbeddedPostgres({ dataDir: path.join(dir, 'pg'), port: await freePort(), logger, ...(options.settings ? { settings: options.settings } : {}) });
  const pw = { owner: randomBytes(12).toString('hex'), runtime: randomBytes(12).toString('hex') };
  await provisionRoles(pg.superuserUrl(), pw);
  await createDatabase(pg.superuserUrl(), 'bench');
  const runtimeUrl = urlFor(pg.superuserUrl(), RUNTIME_ROLE, pw.runtime, 'bench');
  const owner = createKnex(urlFor(pg.superuserUrl(), OWNER_ROLE, pw.owner, 'bench'), { poolMax: 4 });
  const app = createKnex(runtimeUrl, { poolMax: 10 });
  const store = createSessionStore(runtimeUrl, app, { prune: false });
  const servers: http.Server[] = [];
  return {
    dir, pg, runtimeUrl, owner, app, db: createDb(app), store,
    async listen(handler) {
      const server = http.createServer(handler);
      servers.push(server);
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    },
    async close() {
      await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
      await (store as unknown as { close(): Promise<void> }).close();
      await app.destroy();
      await owner.destroy();
      await pg.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Cookie-keeping form POST with the page's CSRF token. */
export async function signInCookie(base: string, email: string, secret: string, slug = 'bench'): Promise<string> {
  let cookie = '';
  const keep = (res: Response) => {
    const set = res.headers.getSetCookie().map((c) => c.split(';')[0]!).find((c) => c.startsWith('enamel='));
    if (set) cookie = set;
  };
  const form = async (url: string) => {
    const res = await fetch(base + url, { headers: { cookie } });
    keep(res);
    return /name="_csrf" value="([^"]+)"/.exec(await res.text())?.[1] ?? '';
  };
  const post = async (url: string, body: Record<string, string>) => {
    const res = await fetch(base + url, { method: 'POST', redirect: 'manual', headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(body) });
    keep(res);
    return res;
  };
  // Every account uses two-step sign-in: the password, then the current code of this account's app.
  const first = await post(`/p/${slug}/sign-in`, { _csrf: await form(`/p/${slug}/sign-in`), email, password: STAFF_PASSWORD });
  if (first.headers.get('location') !== `/p/${slug}/sign-in/code`) throw new Error('bench sign-in failed (password step)');
  const done = await post(`/p/${slug}/sign-in/code`, { _csrf: await form(`/p/${slug}/sign-in/code`), code: await generate({ secret, epoch: Math.floor(Date.now() / 1000) + 30 }) }); // the enrolment used this window's code
  if (done.headers.get('location') !== `/p/${slug}/home`) throw new Error('bench sign-in failed (code step)');
  return cookie;
}

/**
 * autocannon in a child process (so the load generator does not share the server's event loop),
 * each request carrying one of the signed-in sessions in turn (one user's session is not shared by
 * sixteen connections in real life; sharing one would serialise on its row).
 */
export async function cannon(url: string, duration: number, cookies: string[]): Promise<autocannon.Result> {
  const code = `
    const autocannon = require(process.env.AC_MODULE);
    const data = JSON.parse(process.env.AC_DATA);
    let i = 0;
    autocannon({ url: data.url, connections: data.connections, duration: data.duration,
      requests: [{ setupRequest: (req) => { if (data.cookies.length) req.headers = { ...req.headers, cookie: data.cookies[i++ % data.cookies.length] }; return req; } }] })
      .then((r) => process.stdout.write(JSON.stringify(r)), (e) => { console.error(e); process.exit(1); });`;
  const child = spawn(process.execPath, ['-e', code], { env: { ...process.env, AC_MODULE: require.resolve('autocannon'), AC_DATA: JSON.stringify({ url, connections, duration, cookies }) }, stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  await new Promise((r) => child.on('exit', r));
  return JSON.parse(out) as autocannon.Result;
}

/** CPU seconds used so far by the embedded server: the postmaster and its backends (Linux /proc). */
export async function postgresCpuSeconds(dir: string): Promise<number | undefined> {
  const postmaster = Number((await readFile(path.join(dir, 'pg', 'pg', 'postmaster.pid'), 'utf8').catch(() => '')).split('\n')[0]);
  if (!postmaster) return undefined;
  let ticks = 0;
  for (const pid of await readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(pid)) continue;
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // state, ppid, …; utime and stime are fields 14 and 15
    if (Number(pid) === postmaster || Number(f[1]) === postmaster) ticks += Number(f[11]) + Number(f[12]);
  }
  return ticks / 100; // USER_HZ
}

/** Warms up 2 s, then loads `url` for `seconds` and prints a line (and CPU per request); throws on failed requests. */
export async function load(cluster: { dir: string }, seconds: number, name: string, url: string, cookies: string[]): Promise<{ rps: number; p50: number; p99: number }> {
  await cannon(url, 2, cookies);
  const cpu = process.cpuUsage();
  const pgBefore = await postgresCpuSeconds(cluster.dir);
  const r = await cannon(url, seconds, cookies);
  const node = process.cpuUsage(cpu);
  const pgAfter = await postgresCpuSeconds(cluster.dir);
  const errors = r.errors + r.non2xx + r.timeouts;
  console.log(name.padEnd(46), r.requests.average.toFixed(0).padStart(8), String(r.latency.p50).padStart(8), String(r.latency.p99).padStart(8), String(errors).padStart(7));
  // CPU per request: where the two cores go (the load generator's own share is not counted).
  const perRequest = (cpuSeconds: number) => `${((cpuSeconds * 1000) / r.requests.total).toFixed(2)} ms`;
  const pgShare = pgBefore !== undefined && pgAfter !== undefined ? `, PostgreSQL ${perRequest(pgAfter - pgBefore)}` : '';
  console.log(`${''.padEnd(4)}CPU per request: Node ${perRequest((node.user + node.system) / 1e6)}${pgShare}`);
  if (errors) throw new Error(`${name}: ${errors} failed requests`);
  return { rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99 };
}

