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
import type http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import express from 'express';
import pgDriver from 'pg';
import { createApp } from '../src/app.js';
import { loadConfig } from '../src/config/env.js';
import { viewsDir } from '../src/config/paths.js';
import { PracticeCrypto } from '../src/crypto/encrypted-columns.js';
import { LocalKeyProvider } from '../src/crypto/key-provider.js';
import { Keyring } from '../src/crypto/keyring.js';
import { createKnex } from '../src/db/knex.js';
import { migrateLatest } from '../src/db/migrations.js';
import { ALL_PERMISSIONS } from '../src/permissions.js';
import { formatter } from '../src/presenters/format.js';
import { presentChart } from '../src/presenters/patient.presenter.js';
import { patientSecrets, type PatientRow } from '../src/queries/patients.queries.js';
import { LocalFileStore } from '../src/storage/file-store.js';
import { generatePatients } from '../seeds/patient-generator.js';
import { buildPractice } from '../test/support/factories.js';
import { buildStaff } from '../test/support/staff.js';
import { benchCluster, connections, load as loadRun, logger, signInCookie } from './support.js';

const seconds = Number(process.env.BENCH_SECONDS ?? 10);
// BENCH_PG_STATS=1: the server keeps per-statement statistics (pg_stat_statements, statements inside
// functions too) and the bench prints where the database's time went under load.
const pgStats = Boolean(process.env.BENCH_PG_STATS);
const cluster = await benchCluster('chart', pgStats ? { settings: { shared_preload_libraries: 'pg_stat_statements', 'pg_stat_statements.track': 'all' } } : {});
const { dir, pg, runtimeUrl, owner, app, db, store } = cluster;
const listen = (handler: http.RequestListener) => cluster.listen(handler);
const load = (name: string, url: string, cookies: string[]) => loadRun(cluster, seconds, name, url, cookies);

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
  await cluster.close();
}
