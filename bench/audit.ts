/**
 * Audit-log benchmark (embedded PostgreSQL in a scratch dir, 127.0.0.1 only, bounded in time):
 *  - appends/s with 1, 4 and 16 concurrent writers, in one practice and spread over practices,
 *    beside plain inserts into an unchained table of the same shape (ratio), sealer running;
 *  - the longest time an event stayed unsealed during those runs;
 *  - verification speed over BENCH_EVENTS (default 1,000,000) events beside merely reading them.
 *
 *   npm run bench:audit          BENCH_SECONDS=3 BENCH_EVENTS=200000 npm run bench:audit
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { audit } from '../src/audit/record.js';
import { sealAll, startSealer } from '../src/audit/sealer.js';
import { AUDIT_ROW_COLUMNS } from '../src/audit/canonical.js';
import { verifyPractice } from '../src/audit/verify.js';
import { createLogger } from '../src/config/logger.js';
import { LocalKeyProvider } from '../src/crypto/key-provider.js';
import { startEmbeddedPostgres } from '../src/db/embedded.js';
import { createKnex } from '../src/db/knex.js';
import { migrateLatest } from '../src/db/migrations.js';
import { OWNER_ROLE, RUNTIME_ROLE, createDatabase, provisionRoles, urlFor } from '../src/db/provision.js';
import { createDb, withPractice } from '../src/db/tenant.js';
import { freePort } from '../test/support/free-port.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const EVENTS = Number(process.env.BENCH_EVENTS ?? 1_000_000);
const logger = createLogger('warn');
const dir = await mkdtemp(path.join(os.tmpdir(), 'enamel-bench-audit-'));
const pg = await startEmbeddedPostgres({ dataDir: dir, port: await freePort(), logger });
const pw = { owner: randomBytes(12).toString('hex'), runtime: randomBytes(12).toString('hex') };
await provisionRoles(pg.superuserUrl(), pw);
await createDatabase(pg.superuserUrl(), 'bench');
const owner = createKnex(urlFor(pg.superuserUrl(), OWNER_ROLE, pw.owner, 'bench'), { poolMax: 4 });
const app = createKnex(urlFor(pg.superuserUrl(), RUNTIME_ROLE, pw.runtime, 'bench'), { poolMax: 20 });
const db = createDb(app);

try {
  await migrateLatest(owner);
  // The unchained baseline: same columns, same tenant policy, no trigger, no seal.
  await owner.raw(`CREATE TABLE audit_plain (LIKE audit_events INCLUDING DEFAULTS INCLUDING CONSTRAINTS);
                   ALTER TABLE audit_plain ADD COLUMN pk bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY;
                   SELECT enamel_tenant_table('audit_plain');
                   GRANT SELECT, INSERT ON audit_plain TO enamel_app;`);
  await owner.raw('ALTER TABLE audit_plain ALTER COLUMN id DROP NOT NULL');
  const practices: string[] = [];
  for (let i = 0; i < 16; i++) {
    const [row] = await owner('practices').insert({ slug: `bench-${i}`, name: `Bench ${i}` }).returning<{ id: string }[]>('id');
    practices.push(row!.id);
  }
  const actor = { kind: 'user', id: randomUUID() } as const;

  async function run(writers: number, spread: boolean, table: 'audit_events' | 'audit_plain'): Promise<number> {
    let count = 0;
    const deadline = performance.now() + SECONDS * 1000;
    await Promise.all(
      Array.from({ length: writers }, async (_, w) => {
        const practiceId = spread ? practices[w % practices.length]! : practices[0]!;
        while (performance.now() < deadline) {
          await db.withPractice(practiceId, actor, async (trx) => {
            const event = { practiceId, actor, action: 'view', resource: { type: 'patient', id: randomUUID() }, outcome: 'allowed', ip: '127.0.0.1' } as const;
            if (table === 'audit_events') await audit.record(trx, event);
            else await trx('audit_plain').insert({ practice_id: practiceId, actor_type: 'user', actor_id: actor.id, action: 'view', resource_type: 'patient', resource_id: event.resource.id, outcome: 'allowed', client_ip: '127.0.0.1', details: {} });
          });
          count++;
        }
      }),
    );
    return count / SECONDS;
  }

  console.log(`Enamel audit bench — ${os.cpus().length} cores, Node ${process.version}, ${SECONDS} s per run, sealer every 1 s\n`);
  console.log('writers  practices   chained/s   plain/s   ratio');
  const stopSealer = startSealer(db, logger, 1000);
  // Warm-up: JIT, pool connections, plans (not reported).
  await run(4, true, 'audit_events');
  await run(4, true, 'audit_plain');
  for (const writers of [1, 4, 16]) {
    for (const spread of [false, true]) {
      const chained = await run(writers, spread, 'audit_events');
      const plain = await run(writers, spread, 'audit_plain');
      console.log(`${String(writers).padStart(7)}  ${(spread ? `${Math.min(writers, 16)}` : '1').padStart(9)}  ${chained.toFixed(0).padStart(10)}  ${plain.toFixed(0).padStart(8)}  ${(chained / plain).toFixed(2).padStart(6)}`);
    }
  }
  await stopSealer();
  await sealAll(db);
  const lag = await owner.raw<{ rows: { max: string; p99: string }[] }>(`
    SELECT max(extract(epoch FROM sealed_at - occurred_at))::numeric(10,3)::text AS max,
           percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM sealed_at - occurred_at))::numeric(10,3)::text AS p99
      FROM audit_events`);
  console.log(`\nlongest time unsealed: ${lag.rows[0]!.max} s (p99 ${lag.rows[0]!.p99} s) — bound: sealer interval (1 s) + one pass`);

  // Verification over EVENTS events in one practice.
  const big = practices[15]!;
  let t0 = performance.now();
  await withPractice(owner, big, { kind: 'system', id: 'bench' }, (trx) =>
    trx.raw(`INSERT INTO audit_events (practice_id, actor_type, actor_id, action, resource_type, resource_id, outcome, client_ip, details)
             SELECT ?, 'user', ?, 'view', 'patient', gen_random_uuid()::text, 'allowed', '10.0.0.1', jsonb_build_object('count', g)
               FROM generate_series(1, ?) g`, [big, actor.id, EVENTS]),
  );
  const inserted = (performance.now() - t0) / 1000;
  t0 = performance.now();
  await sealAll(db, 10_000);
  const sealSeconds = (performance.now() - t0) / 1000;
  console.log(`\n${EVENTS.toLocaleString('en-US')} events: inserted in ${inserted.toFixed(1)} s, sealed in ${sealSeconds.toFixed(1)} s (${(EVENTS / sealSeconds).toFixed(0)} events/s)`);

  const provider = new LocalKeyProvider({ k1: randomBytes(32).toString('base64') }, 'k1', { practiceKeysDir: path.join(dir, 'keys') });

  // The same rows, same client, same paging — without hashing.
  async function readAll(): Promise<number> {
    let read = 0;
    for (let after = 0n; ; ) {
      const rows = await db.withPractice(big, { kind: 'system', id: 'bench' }, (trx) =>
        trx('audit_events').whereNotNull('hash').where('audit_events.seq', '>', after.toString()).orderBy('audit_events.seq').limit(10_000).select(AUDIT_ROW_COLUMNS.map((c) => trx.raw(c))),
      );
      read += rows.length;
      if (rows.length < 10_000) return read;
      after = BigInt((rows[rows.length - 1] as { seq: string }).seq);
    }
  }
  await readAll(); // warm the caches first, so neither measurement pays for a cold start
  t0 = performance.now();
  const read = await readAll();
  const readSeconds = (performance.now() - t0) / 1000;
  // Like with like: the read-only baseline is one pass over one connection, so the ratio compares it
  // with verification in one pass too; the two-halves-in-parallel figure is printed beside it.
  t0 = performance.now();
  const single = await verifyPractice(db, provider, big, { batchSize: 10_000, parallel: false });
  const singleSeconds = (performance.now() - t0) / 1000;
  if (!single.ok) throw new Error(`verification failed: ${JSON.stringify(single.problem)}`);
  t0 = performance.now();
  const result = await verifyPractice(db, provider, big, { batchSize: 10_000 });
  const verifySeconds = (performance.now() - t0) / 1000;
  if (!result.ok) throw new Error(`verification failed: ${JSON.stringify(result.problem)}`);
  const rate = (n: number, secs: number) => `${(n / secs).toFixed(0)} events/s (${secs.toFixed(1)} s)`;
  console.log(`read only, one pass: ${rate(read, readSeconds)}   verify, one pass: ${rate(single.checked, singleSeconds)}   ratio ${(readSeconds / singleSeconds).toFixed(2)}`);
  console.log(`verify, two halves in parallel (as the jobs run it): ${rate(result.checked, verifySeconds)}`);
} finally {
  await app.destroy();
  await owner.destroy();
  await pg.stop();
  await rm(dir, { recursive: true, force: true });
}
