import { expect } from 'chai';
import { mkdtemp, open, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ArchiveReader } from '../../src/backup/archive.js';
import { listBackups } from '../../src/backup/backup.js';
import type { BackupSettings } from '../../src/backup/settings.js';
import { createLogger } from '../../src/config/logger.js';
import { INSTALLATION_ID } from '../../src/db/tenant.js';
import { backupJob, restoreDrillJob } from '../../src/jobs/backup.job.js';
import { runJob, type JobContext } from '../../src/jobs/scheduler.js';
import { testBackupSettings } from '../support/backups.js';
import { buildCryptoFixture, type CryptoFixture } from '../support/crypto.js';
import { useTestDatabase } from '../support/db.js';
import { buildPatient, buildPractice } from '../support/factories.js';
import { MemoryTransport } from '../support/mail.js';

/** The nightly backup job and the weekly restore drill (issue 17): recorded, audited, and loud when they fail. */
describe('backup job and restore drill', function () {
  this.timeout(60_000);
  const t = useTestDatabase();
  let fx: CryptoFixture;
  let dir: string;
  let ctx: JobContext;
  const installation = <T>(fn: Parameters<typeof t.current.db.withPractice<T>>[2]) => t.current.db.withPractice(INSTALLATION_ID, { kind: 'system', id: 'test' }, fn);
  const drills = () => installation((trx) => trx('restore_drills').orderBy('ran_at').select('outcome', 'failure', 'rpo_seconds', 'rto_seconds', 'tables', 'rows', 'files', 'chains', 'backup_id'));
  const openDrillAlerts = () => installation((trx) => trx('security_alerts').where({ kind: 'restore_drill_failed' }).whereNull('acknowledged_at').count<{ n: string }[]>({ n: '*' })).then((r) => Number(r[0]!.n));
  const scratchDatabases = async () => (await t.current.owner.raw<{ rows: unknown[] }>(`SELECT datname FROM pg_database WHERE datname LIKE 'enamel_drill_%'`)).rows.length;

  const settings = (over: Partial<BackupSettings> = {}): BackupSettings => testBackupSettings(t.current.name, dir, { keep: 3, ...over });

  before(async () => {
    fx = await buildCryptoFixture(t.current);
    dir = await mkdtemp(path.join(os.tmpdir(), 'enamel-drill-backups-'));
    const p = await buildPractice(t.current.owner, { slug: 'drill-practice' });
    await buildPatient(t.current.db, fx.keyring, p);
    ctx = { db: t.current.db, provider: fx.keyring.provider, keyring: fx.keyring, transport: new MemoryTransport(), files: fx.files, logger: createLogger(process.env.DEBUG_JOBS ? 'error' : 'silent'), backup: settings() };
  });

  after(async () => {
    await rm(dir, { recursive: true, force: true });
    await fx.cleanup();
  });

  it('the backup job writes a backup and audits it in the installation chain', async () => {
    const run = await runJob(backupJob, ctx);
    expect(run.outcome).to.equal('ok');
    expect(await listBackups(dir)).to.have.length(1);
    const events = await installation((trx) => trx('audit_events').where({ action: 'backup_create' }).select('actor_type', 'actor_id', 'resource_type', 'outcome'));
    expect(events).to.deep.equal([{ actor_type: 'system', actor_id: 'backup', resource_type: 'backup', outcome: 'allowed' }]);
  });

  it('the drill restores the newest backup into a scratch database, records RPO and RTO, and drops the scratch database', async () => {
    const run = await runJob(restoreDrillJob, ctx);
    expect(run.outcome).to.equal('ok');
    const [d] = await drills();
    expect(d).to.include({ outcome: 'passed', failure: null, chains: 0 });
    expect(d.rto_seconds).to.be.at.least(1);
    expect(d.rpo_seconds).to.be.at.least(0).and.below(600);
    expect(Number(d.rows)).to.be.greaterThan(0);
    expect(d.tables).to.be.greaterThan(30);
    expect(d.backup_id).to.equal((await ArchiveReader.open((await listBackups(dir))[0]!.file).then(async (r) => (await r.close(), r.header.id))));
    expect(await scratchDatabases()).to.equal(0);
    expect(await openDrillAlerts()).to.equal(0);
    const audited = await installation((trx) => trx('audit_events').where({ action: 'restore_drill' }).pluck('outcome'));
    expect(audited).to.deep.equal(['allowed']);
  });

  it('a drill of a damaged backup fails, names the part, raises one critical installation alert, and leaves no scratch database', async () => {
    await runJob(backupJob, ctx);
    const [newest] = await listBackups(dir);
    const reader = await ArchiveReader.open(newest!.file);
    const part = reader.parts.find((p) => p.name === 'db/practices') ?? reader.parts.find((p) => p.name === 'pg_dump/database')!;
    await reader.close();
    const handle = await open(newest!.file, 'r+');
    await handle.write(Buffer.from([0x42]), 0, 1, part.offset + 30);
    await handle.close();
    expect((await runJob(restoreDrillJob, ctx)).outcome).to.equal('ok');
    const last = (await drills()).at(-1)!;
    expect(last).to.include({ outcome: 'failed', failure: `verification ${part.name}` });
    expect(last.rto_seconds).to.equal(null);
    expect(await openDrillAlerts()).to.equal(1);
    expect(await scratchDatabases()).to.equal(0);
    // A second failure does not raise a second alert while the first is open.
    await runJob(restoreDrillJob, ctx);
    expect(await openDrillAlerts()).to.equal(1);
  });

  it('with no backup, or nothing configured, the drill fails saying so; the backup job fails loudly without a source', async () => {
    const empty = await mkdtemp(path.join(os.tmpdir(), 'enamel-drill-none-'));
    await runJob(restoreDrillJob, { ...ctx, backup: settings({ dir: empty }) });
    expect((await drills()).at(-1)).to.include({ outcome: 'failed', failure: 'no_backup' });
    await runJob(restoreDrillJob, { ...ctx, backup: settings({ drill: undefined }) });
    expect((await drills()).at(-1)).to.include({ outcome: 'failed', failure: 'not_configured' });
    const noSource = await runJob(backupJob, { ...ctx, backup: settings({ sourceUrl: undefined }) });
    expect(noSource).to.deep.equal({ outcome: 'failed', errorType: 'Error' });
    await rm(empty, { recursive: true, force: true });
  });
});
