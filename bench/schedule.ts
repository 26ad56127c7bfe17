/**
 * Day-view benchmark (issue 20): GET /p/<practice>/schedule for a location with 8 chairs and 80
 * appointments, on the real app (session check, tenant context, the day's rows, each named patient
 * decrypted and its read audited), at BENCH_CONNECTIONS (16) for BENCH_SECONDS (10). Target: p99
 * under 100 ms. Embedded PostgreSQL in a scratch directory; 127.0.0.1 only; bounded in time.
 *
 *   npm run bench:schedule            BENCH_SECONDS=5 npm run bench:schedule
 */
import { randomBytes, randomUUID } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { createApp } from '../src/app.js';
import { loadConfig } from '../src/config/env.js';
import { LocalKeyProvider } from '../src/crypto/key-provider.js';
import { Keyring } from '../src/crypto/keyring.js';
import { migrateLatest } from '../src/db/migrations.js';
import { LocalFileStore } from '../src/storage/file-store.js';
import { generatePatients } from '../seeds/patient-generator.js';
import { buildPractice } from '../test/support/factories.js';
import { buildStaff } from '../test/support/staff.js';
import { benchCluster, connections, load, logger, signInCookie } from './support.js';

const seconds = Number(process.env.BENCH_SECONDS ?? 10);
const CHAIRS = 8;
const PER_CHAIR = 10;
const cluster = await benchCluster('schedule');
const { dir, owner, db } = cluster;

try {
  await migrateLatest(owner);
  const keyring = new Keyring(new LocalKeyProvider({ k1: randomBytes(32).toString('base64') }, 'k1', { practiceKeysDir: path.join(dir, 'keys') }));
  const p = await buildPractice(owner, { slug: 'bench', name: 'Bench Dental' });
  const locationId = p.locationIds[0]!;
  const desks: { email: string; secret?: string }[] = [];
  for (let i = 0; i < connections; i++) desks.push(await buildStaff({ db, owner } as never, { keyring, now: Date.now }, p, { roles: ['front_desk'] }));
  const providers: { id: string }[] = [];
  for (let i = 0; i < CHAIRS; i++) providers.push(await buildStaff({ db, owner } as never, { keyring, now: Date.now }, p, { roles: ['provider'] }));
  const patients = await generatePatients((work) => db.withPractice(p.id, { kind: 'system', id: 'bench' }, work), keyring, p.id, p.locationIds, CHAIRS * PER_CHAIR);
  const day = '2026-03-10';
  await db.withPractice(p.id, { kind: 'system', id: 'bench' }, async (trx) => {
    for (let c = 3; c <= CHAIRS; c++) await trx('operatories').insert({ practice_id: p.id, location_id: locationId, name: `Chair ${c}`, position: c - 1 });
    const chairs = await trx('operatories').where({ location_id: locationId }).orderBy('position').pluck('id');
    const kind = await trx('appointment_kinds').where({ key: 'cleaning' }).first<{ id: string }>('id');
    let n = 0;
    for (let c = 0; c < CHAIRS; c++) {
      for (let k = 0; k < PER_CHAIR; k++) {
        const start = new Date(Date.parse(`${day}T12:00:00Z`) + k * 50 * 60_000); // 08:00 EDT, every 50 minutes
        await trx('appointments').insert({ id: randomUUID(), practice_id: p.id, patient_id: patients[n++]!.id, location_id: locationId, provider_id: providers[c]!.id, chair_id: chairs[c], kind_id: kind!.id, starts_at: start, ends_at: new Date(start.getTime() + 45 * 60_000), created_by: providers[c]!.id });
      }
    }
  });
  const config = loadConfig({ NODE_ENV: 'development', DATABASE_URL: cluster.runtimeUrl, SESSION_SECRET: randomBytes(32).toString('hex'), LOG_LEVEL: 'warn' });
  const base = await cluster.listen(createApp({ config, logger, db, keyring, sessionStore: cluster.store, files: new LocalFileStore(path.join(dir, 'files')) }));
  const cookies: string[] = [];
  for (const s of desks) cookies.push(await signInCookie(base, s.email, s.secret!));
  const url = `${base}/p/bench/schedule?location=${locationId}&day=${day}`;
  const page = await (await fetch(url, { headers: { cookie: cookies[0]! } })).text();
  const shown = (page.match(/href="\/p\/bench\/appointments\//g) ?? []).length;
  if (shown !== CHAIRS * PER_CHAIR) throw new Error(`the day view shows ${shown} appointments, not ${CHAIRS * PER_CHAIR}`);
  console.log(`Enamel day-view bench — ${os.cpus().length} cores, Node ${process.version}, ${connections} connections, ${seconds} s, ${CHAIRS} chairs, ${CHAIRS * PER_CHAIR} appointments (${(page.length / 1024).toFixed(0)} KB page)\n`);
  console.log('target'.padEnd(46), 'req/s'.padStart(8), 'p50 ms'.padStart(8), 'p99 ms'.padStart(8), 'errors'.padStart(7));
  const r = await load(cluster, seconds, 'day view, 8 chairs, 80 appointments', url, cookies);
  console.log(`\np99 ${r.p99} ms: ${r.p99 < 100 ? 'under' : 'OVER'} the 100 ms target`);
  const audited = await owner('audit_events').where({ action: 'list', resource_type: 'appointment' }).count<{ n: string }[]>({ n: '*' });
  console.log(`audit rows written (one per patient named per view): ${Number(audited[0]!.n).toLocaleString('en-US')}`);
} finally {
  await cluster.close();
}
