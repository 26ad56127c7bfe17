/**
 * Chart-page benchmark: requests/s and p50/p99 for GET /p/<practice>/patients/<id> on the real app
 * (session check, practice context, roles, row-level security, decryption of every field, the
 * audit insert in the same transaction), beside the same page rendered with security off (no
 * session, no tenant context, no audit, a plaintext copy of the same rows, the same template),
 * in the same run. Embedded PostgreSQL in a scratch directory; 127.0.0.1 only; bounded in time.
 *
 *   npm run bench:chart            BENCH_SECONDS=5 BENCH_CONNECTIONS=16 npm run bench:chart
 *   BENCH_COUNT_QUERIES=1 lists the statements of one chart view by round trip; BENCH_PG_STATS=1 prints
 *   the database's time per statement under load; BENCH_ONLY=on|off loads one target.
 */
import { randomBytes } from 'node:crypto';
import { generate } from 'otplib';
import { chmod, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type autocannon from 'autocannon';
import { createRequire } from 'node:module';
import { spawn } from 'node:child_process';
import express from 'express';
import pgDriver from 'pg';
import { createApp } from '../src/app.js';
import { createSessionStore } from '../src/auth/session.js';
import { loadConfig } from '../src/config/env.js';
import { createLogger } from '../src/config/logger.js';
import { viewsDir } from '../src/config/paths.js';
import { PracticeCrypto } from '../src/crypto/encrypted-columns.js';
import { LocalKeyProvider } from '../src/crypto/key-provider.js';
import { Keyring } from '../src/crypto/keyring.js';
import { startEmbeddedPostgres } from '../src/db/embedded.js';
import { createKnex } from '../src/db/knex.js';
import { migrateLatest } from '../src/db/migrations.js';
import { OWNER_ROLE, RUNTIME_ROLE, createDatabase, provisionRoles, urlFor } from '../src/db/provision.js';
import { createDb } from '../src/db/tenant.js';
import { ALL_PERMISSIONS } from '../src/permissions.js';
import { formatter } from '../src/presenters/format.js';
import { presentChart } from '../src/presenters/patient.presenter.js';
import { patientSecrets, type PatientRow } from '../src/queries/patients.queries.js';
import { LocalFileStore } from '../src/storage/file-store.js';
import { generatePatients } from '../seeds/patient-generator.js';
import { buildPractice } from '../test/support/factories.js';
import { freePort } from '../test/support/free-port.js';
import { buildStaff, STAFF_PASSWORD } from '../test/support/staff.js';

const require = createRequire(import.meta.url);
const seconds = Number(process.env.BENCH_SECONDS ?? 10);
const connections = Number(process.env.BENCH_CONNECTIONS ?? 16);
const logger = createLogger('warn');
const dir = await mkdtemp(path.join(os.tmpdir(), 'enamel-bench-chart-'));
await chmod(dir, 0o711); // the embedded server's postgres user must pass through it
// BENCH_PG_STATS=1: the server keeps per-statement statistics (pg_stat_statements, statements inside
// functions too) and the bench prints where the database's time went under load.
const pgStats = Boolean(process.env.BENCH_PG_STATS);
const pg = await startEmbeddedPostgres({ dataDir: path.join(dir, 'pg'), port: await freePort(), logger, ...(pgStats ? { settings: { shared_preload_libraries: 'pg_stat_statements', 'pg_stat_statements.track': 'all' } } : {}) });
const pw = { owner: randomBytes(12).toString('hex'), runtime: randomBytes(12).toString('hex') };
await provisionRoles(pg.superuserUrl(), pw);
await createDatabase(pg.superuserUrl(), 'bench');
const runtimeUrl = urlFor(pg.superuserUrl(), RUNTIME_ROLE, pw.runtime, 'bench');
const owner = createKnex(urlFor(pg.superuserUrl(), OWNER_ROLE, pw.owner, 'bench'), { poolMax: 4 });
const app = createKnex(runtimeUrl, { poolMax: 10 });
const db = createDb(app);
const servers: http.Server[] = [];
const store = createSessionStore(runtimeUrl, app, { prune: false });

async function listen(handler: http.RequestListener): Promise<string> {
  const server = http.createServer(handler);
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/**
 * Wraps pg's Client#query for the whole process until stop(): a statement sent on a connection with
 * nothing in flight starts a round trip; one sent while earlier ones await their answer shares it.
 */
function countRoundTrips(): { stop(): { roundTrips: number; statements: { trip: number; sql: string }[] } } {
  type Query = (this: pgDriver.Client, ...args: unknown[]) => unknown;
  const proto = pgDriver.Client.prototype as unknown as { query: Query };
  const original = proto.query;
  const inFlight = new WeakMap<pgDriver.Client, number>();
  const statements: { trip: number; sql: string }[] = [];
  let roundTrips = 0;
  proto.query = function (this: pgDriver.Client, ...args: unknown[]) {
    const n = inFlight.get(this) ?? 0;
    if (n === 0) roundTrips++;
    inFlight.set(this, n + 1);
    const first = args[0];
    const sql = typeof first === 'string' ? first : String((first as { text?: string }).text ?? '');
    statements.push({ trip: roundTrips, sql: sql.replace(/\s+/g, ' ').slice(0, 100) });
    const done = () => inFlight.set(this, (inFlight.get(this) ?? 1) - 1);
    const last = args.length - 1;
    if (typeof args[last] === 'function') {
      const cb = args[last] as (...r: unknown[]) => void;
      args[last] = (...r: unknown[]) => {
        done();
        cb(...r);
      };
      return original.apply(this, args);
    }
    const result = original.apply(this, args) as Promise<unknown>;
    result.then(done, done);
    return result;
  };
  return {
    stop() {
      proto.query = original;
      return { roundTrips, statements };
    },
  };
}

/** Cookie-keeping form POST with the page's CSRF token. */
async function signInCookie(base: string, email: string, secret: string): Promise<string> {
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
  const first = await post('/p/bench/sign-in', { _csrf: await form('/p/bench/sign-in'), email, password: STAFF_PASSWORD });
  if (first.headers.get('location') !== '/p/bench/sign-in/code') throw new Error('bench sign-in failed (password step)');
  const done = await post('/p/bench/sign-in/code', { _csrf: await form('/p/bench/sign-in/code'), code: await generate({ secret, epoch: Math.floor(Date.now() / 1000) + 30 }) }); // the enrolment used this window's code
  if (done.headers.get('location') !== '/p/bench/home') throw new Error('bench sign-in failed (code step)');
  return cookie;
}

/**
 * autocannon in a child process (so the load generator does not share the server's event loop),
 * each request carrying one of the signed-in sessions in turn (one user's session is not shared by
 * sixteen connections in real life; sharing one would serialise on its row).
 */
async function cannon(url: string, duration: number, cookies: string[]): Promise<autocannon.Result> {
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
async function postgresCpuSeconds(): Promise<number | undefined> {
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

async function load(name: string, url: string, cookies: string[]): Promise<{ rps: number; p50: number; p99: number }> {
  await cannon(url, 2, cookies);
  const cpu = process.cpuUsage();
  const pgBefore = await postgresCpuSeconds();
  const r = await cannon(url, seconds, cookies);
  const node = process.cpuUsage(cpu);
  const pgAfter = await postgresCpuSeconds();
  const errors = r.errors + r.non2xx + r.timeouts;
  console.log(name.padEnd(46), r.requests.average.toFixed(0).padStart(8), String(r.latency.p50).padStart(8), String(r.latency.p99).padStart(8), String(errors).padStart(7));
  // CPU per request: where the two cores go (the load generator's own share is not counted).
  const perRequest = (cpuSeconds: number) => `${((cpuSeconds * 1000) / r.requests.total).toFixed(2)} ms`;
  const pgShare = pgBefore !== undefined && pgAfter !== undefined ? `, PostgreSQL ${perRequest(pgAfter - pgBefore)}` : '';
  console.log(`${''.padEnd(4)}CPU per request: Node ${perRequest((node.user + node.system) / 1e6)}${pgShare}`);
  if (errors) throw new Error(`${name}: ${errors} failed requests`);
  return { rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99 };
}

try {
  await migrateLatest(owner);
  const keyring = new Keyring(new LocalKeyProvider({ k1: randomBytes(32).toString('base64') }, 'k1', { practiceKeysDir: path.join(dir, 'keys') }));
  const p = await buildPractice(owner, { slug: 'bench', name: 'Bench Dental' });
  // One provider per connection (one user's session is not shared by sixteen connections in real life).
  const staff: { id: string; email: string; secret?: string }[] = [];
  for (let i = 0; i < connections; i++) staff.push(await buildStaff({ db, owner } as never, { keyring, now: Date.now }, p, { roles: ['provider'] }));
  const patients = await generatePatients((work) => db.withPractice(p.id, { kind: 'system', id: 'bench' }, work), keyring, p.id, p.locationIds, 1000);
  const target = patients[0]!;

  // Security on: the real app.
  const config = loadConfig({ NODE_ENV: 'development', DATABASE_URL: runtimeUrl, SESSION_SECRET: randomBytes(32).toString('hex'), LOG_LEVEL: 'warn' });
  const on = await listen(createApp({ config, logger, db, keyring, sessionStore: store, files: new LocalFileStore(path.join(dir, 'files')) }));
  const cookies: string[] = [];
  for (const s of staff) cookies.push(await signInCookie(on, s.email, s.secret!));

  // Security off: a plaintext copy of the same row, no session, no tenant context, no audit; same template.
  const row = await db.withPractice(p.id, { kind: 'system', id: 'bench' }, (trx) => trx('patients').where({ id: target.id }).first<PatientRow>());
  const plain = await db.withPractice(p.id, { kind: 'system', id: 'bench' }, (trx) => patientSecrets.open(new PracticeCrypto(keyring, trx, p.id), row));
  await owner.raw('CREATE TABLE bench_plain (id uuid PRIMARY KEY, row jsonb NOT NULL, plain jsonb NOT NULL); GRANT SELECT ON bench_plain TO enamel_app');
  await owner('bench_plain').insert({ id: target.id, row: JSON.stringify({ ...row, given_name: null, family_name: null, date_of_birth: null }), plain: JSON.stringify(plain) });
  const locations = new Map([[p.locationIds[0]!, 'Main']]);
  const actor = { kind: 'user' as const, id: staff[0]!.id, practiceId: p.id, slug: 'bench', displayName: 'Bench', permissions: new Set(ALL_PERMISSIONS), locations: 'all' as const, isOwner: true, authAt: Date.now() };
  const off = express();
  off.set('view engine', 'ejs');
  off.set('views', viewsDir);
  off.set('view cache', true);
  off.get('/chart/:id', async (req, res) => {
    const r = await app('bench_plain').where({ id: req.params.id }).first<{ row: PatientRow; plain: typeof plain }>('row', 'plain');
    if (!r) return res.status(404).end();
    const patient = presentChart(actor, r.row, r.plain, locations, { practiceId: p.id, id: r.row.id, locationId: r.row.location_id }, new Date());
    res.render('patients/show', { title: patient.name, slug: 'bench', actor, patient, saved: false, cspNonce: '', fmt: formatter('MM/DD/YYYY', 'America/New_York') });
  });
  const offBase = await listen(off);

  // The database round trips of one chart view, counted where they happen: every statement any pg
  // client in this process sends (the app's pool and the session store's). In pipeline mode a
  // statement sent while another is still unanswered on the same connection rides that round trip;
  // one sent on an idle connection starts a new one. BENCH_COUNT_QUERIES=1 lists the statements.
  const trips = countRoundTrips();
  await fetch(`${on}/p/bench/patients/${target.id}`, { headers: { cookie: cookies[0]! } });
  const counted = trips.stop();
  console.log(`database round trips for one chart view: ${counted.roundTrips} (${counted.statements.length} statements)`);
  if (process.env.BENCH_COUNT_QUERIES) for (const st of counted.statements) console.log(`  ${st.trip}. ${st.sql}`);
  console.log(`Enamel chart bench — ${os.cpus().length} cores, Node ${process.version}, ${connections} connections, ${seconds} s per target, 1,000 patients\n`);
  console.log('target'.padEnd(46), 'req/s'.padStart(8), 'p50 ms'.padStart(8), 'p99 ms'.padStart(8), 'errors'.padStart(7));
  // BENCH_ONLY=on loads only the secured page (to profile it alone: node --cpu-prof --import tsx bench/chart.ts).
  const only = process.env.BENCH_ONLY;
  const superuser = pgStats ? createKnex(pg.superuserUrl('bench'), { poolMax: 1 }) : undefined;
  if (superuser) await superuser.raw('CREATE EXTENSION IF NOT EXISTS pg_stat_statements; SELECT pg_stat_statements_reset()');
  const secure = only === 'off' ? undefined : await load('chart, security on (session+context+decrypt+audit)', `${on}/p/bench/patients/${target.id}`, cookies);
  if (superuser) {
    // Where the database's time went during the load (both runs: warm-up and measured).
    const top = await superuser.raw<{ rows: { calls: string; total: number; mean: number; query: string }[] }>(
      'SELECT calls, total_exec_time AS total, mean_exec_time AS mean, query FROM pg_stat_statements WHERE toplevel ORDER BY total_exec_time DESC LIMIT 8',
    );
    const all = top.rows.reduce((n, r) => n + r.total, 0);
    console.log('\ndatabase execution time by statement (pg_stat_statements, top level):');
    for (const r of top.rows) console.log(`  ${((r.total / all) * 100).toFixed(1).padStart(5)}%  ${r.mean.toFixed(3).padStart(7)} ms × ${Number(r.calls).toLocaleString('en-US').padStart(7)}  ${r.query.replace(/\s+/g, ' ').slice(0, 80)}`);
    const inner = await superuser.raw<{ rows: { calls: string; mean: number; query: string }[] }>(
      'SELECT calls, mean_exec_time AS mean, query FROM pg_stat_statements WHERE NOT toplevel ORDER BY total_exec_time DESC LIMIT 6',
    );
    console.log('  inside functions:');
    for (const r of inner.rows) console.log(`         ${r.mean.toFixed(3).padStart(7)} ms × ${Number(r.calls).toLocaleString('en-US').padStart(7)}  ${r.query.replace(/\s+/g, ' ').slice(0, 80)}`);
    await superuser.destroy();
  }
  const bare = only === 'on' ? undefined : await load('chart, security off (plain row, no audit)', `${offBase}/chart/${target.id}`, []);
  if (secure && bare) console.log(`\nratio (on / off): ${(secure.rps / bare.rps).toFixed(2)}`);
  const audited = await owner('audit_events').where({ action: 'view', patient_id: target.id }).count<{ n: string }[]>({ n: '*' });
  console.log(`audit rows written for the chart views: ${Number(audited[0]!.n).toLocaleString('en-US')}`);
} finally {
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  await (store as unknown as { close(): Promise<void> }).close();
  await app.destroy();
  await owner.destroy();
  await pg.stop();
  await rm(dir, { recursive: true, force: true });
}
