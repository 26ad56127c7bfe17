/**
 * Backup and restore throughput, and the restore drill on the demo practice (the CI step).
 *
 *   npm run bench:backup                       the demo practice (300 patients, notes, plans, images)
 *   BENCH_PATIENTS=100000 npm run bench:backup the demo plus 100,000 generated patients (bench:patients' generator)
 *
 * Embedded PostgreSQL in a scratch directory, 127.0.0.1 only. Prints the backup's size, MB/s for
 * create, verify and restore (restore = verify + load + checks, as the drill runs it), the drill's
 * RPO and RTO, and exits non-zero if the drill fails.
 */
import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createBackup, verifyBackup } from '../src/backup/backup.js';
import { runRestoreDrill } from '../src/backup/drill.js';
import { loadConfig } from '../src/config/env.js';
import { createLogger } from '../src/config/logger.js';
import { LocalKeyProvider } from '../src/crypto/key-provider.js';
import { Keyring } from '../src/crypto/keyring.js';
import { startEmbeddedPostgres } from '../src/db/embedded.js';
import { createKnex } from '../src/db/knex.js';
import { migrateLatest } from '../src/db/migrations.js';
import { OWNER_ROLE, RUNTIME_ROLE, createDatabase, onDatabase, provisionRoles, urlFor } from '../src/db/provision.js';
import { createDb } from '../src/db/tenant.js';
import { findActivePracticeIdBySlug } from '../src/queries/practices.queries.js';
import { LocalFileStore } from '../src/storage/file-store.js';
import { generatePatients } from '../seeds/patient-generator.js';
import { demoOwnerId, seedDemoOwner } from '../seeds/demo-owner.js';
import { seedDemoPatients } from '../seeds/demo-patients.js';
import { seed as seedDemoPractice } from '../seeds/demo-practice.js';
import { audit } from '../src/audit/record.js';
import { sealAll } from '../src/audit/sealer.js';
import { freePort } from '../test/support/free-port.js';

const extra = Number(process.env.BENCH_PATIENTS ?? 0);
const logger = createLogger('warn');
const dir = await mkdtemp(path.join(os.tmpdir(), 'enamel-bench-backup-'));
await chmod(dir, 0o711); // the embedded server's postgres user must pass through it
const pg = await startEmbeddedPostgres({ dataDir: path.join(dir, 'pg'), port: await freePort(), logger });
const pw = { owner: randomBytes(12).toString('hex'), runtime: randomBytes(12).toString('hex') };
await provisionRoles(pg.superuserUrl(), pw);
await createDatabase(pg.superuserUrl(), 'bench');
const owner = createKnex(urlFor(pg.superuserUrl(), OWNER_ROLE, pw.owner, 'bench'), { poolMax: 2 });
const app = createKnex(urlFor(pg.superuserUrl(), RUNTIME_ROLE, pw.runtime, 'bench'), { poolMax: 4 });
const mb = (bytes: number) => bytes / 1e6;
let failed = false;
try {
  await migrateLatest(owner);
  const provider = new LocalKeyProvider({ k1: randomBytes(32).toString('base64') }, 'k1', { practiceKeysDir: path.join(dir, 'keys') });
  const keyring = new Keyring(provider);
  const files = new LocalFileStore(path.join(dir, 'files'));
  const config = loadConfig({ NODE_ENV: 'development', DATABASE_URL: 'postgres://unused@127.0.0.1/unused', DATA_DIR: dir, PUBLIC_URL: 'http://localhost:3000' });
  const seeding = performance.now();
  // The demo as `npm start` seeds it (its generated sign-in is not printed here).
  const { practiceId: demoId } = await seedDemoPractice(owner);
  await seedDemoOwner(owner, keyring, demoId, config.dataDir, config.publicUrl.toString());
  await seedDemoPatients(owner, keyring, files, demoId, (await demoOwnerId(owner, demoId))!);
  const db = createDb(app);
  if (extra > 0) {
    const practiceId = (await findActivePracticeIdBySlug(app, 'demo'))!;
    const locations = await db.withPractice(practiceId, { kind: 'system', id: 'bench' }, (trx) => trx('locations').pluck('id'));
    await generatePatients((work) => db.withPractice(practiceId, { kind: 'system', id: 'bench' }, work), keyring, practiceId, locations, extra, { seed: 5, batch: 1000 });
  }
  // A day's worth of chart views in the audit log, sealed into the chain (the drill verifies it).
  await db.withPractice(demoId, { kind: 'system', id: 'bench' }, async (trx) => {
    for (const id of await trx('patients').limit(200).pluck<string[]>('id')) await audit.record(trx, { practiceId: demoId, actor: { kind: 'system', id: 'bench' }, action: 'view', outcome: 'allowed', patientId: id });
  });
  await sealAll(db);
  console.log(`Enamel backup bench — ${os.cpus().length} cores, Node ${process.version}; demo practice${extra ? ` + ${extra.toLocaleString('en-US')} patients` : ''} (seeded in ${((performance.now() - seeding) / 1000).toFixed(1)} s)\n`);

  const backups = path.join(dir, 'backups');
  const made = await createBackup({ url: onDatabase(pg.superuserUrl(), 'bench'), files }, backups, { provider });
  const rows = made.manifest.tables.reduce((n, t) => n + t.rows, 0);
  console.log(`backup:  ${mb(made.bytes).toFixed(1)} MB (${made.manifest.tables.length} tables, ${rows.toLocaleString('en-US')} rows, ${made.manifest.files.count} files of ${mb(made.manifest.files.bytes).toFixed(1)} MB) in ${made.seconds.toFixed(2)} s — ${(mb(made.bytes) / made.seconds).toFixed(1)} MB/s`);

  const verifying = performance.now();
  const verified = await verifyBackup(made.file, provider);
  const verifySeconds = (performance.now() - verifying) / 1000;
  if (!verified.ok) throw new Error(`verify failed: ${verified.problem.part}`);
  console.log(`verify:  ${verifySeconds.toFixed(2)} s — ${(mb(made.bytes) / verifySeconds).toFixed(1)} MB/s`);

  const drill = await runRestoreDrill(
    {
      dir: backups,
      keep: 1,
      maxAgeDays: 1,
      sourceUrl: undefined,
      drill: { adminUrl: pg.superuserUrl(), ownerUrl: (d) => urlFor(pg.superuserUrl(), OWNER_ROLE, pw.owner, d), runtimeUrl: (d) => urlFor(pg.superuserUrl(), RUNTIME_ROLE, pw.runtime, d) },
    },
    { db, provider },
  );
  if (drill.outcome === 'failed') {
    failed = true;
    console.log(`restore drill FAILED: ${drill.failure}`);
  } else {
    const r = drill.report!;
    console.log(`restore: ${r.seconds.toFixed(2)} s (verify, load, migrate, checks) — ${(mb(made.bytes) / r.seconds).toFixed(1)} MB/s; ${r.chains.length} audit chain(s) verified, ${r.decrypted} encrypted values decrypted from samples`);
    console.log(`\nrestore drill passed: RPO ${drill.rpoSeconds} s (backup age when restored), RTO ${drill.rtoSeconds} s`);
  }
} finally {
  await app.destroy();
  await owner.destroy();
  await pg.stop();
  await rm(dir, { recursive: true, force: true });
}
if (failed) process.exit(1);
