import { expect } from 'chai';
import { createHash, randomUUID } from 'node:crypto';
import { mkdtemp, open, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { audit } from '../../src/audit/record.js';
import { sealAll } from '../../src/audit/sealer.js';
import { ArchiveReader } from '../../src/backup/archive.js';
import { createBackup, listBackups, pruneBackups, verifyBackup } from '../../src/backup/backup.js';
import { restoreBackup, RestoreRefusedError } from '../../src/backup/restore.js';
import { PracticeCrypto } from '../../src/crypto/encrypted-columns.js';
import { openFile, readFileFully, saveFile } from '../../src/crypto/encrypted-files.js';
import { KeyDestroyedError } from '../../src/crypto/errors.js';
import { shredPractice } from '../../src/crypto/key-management.js';
import { onDatabase } from '../../src/db/provision.js';
import { INSTALLATION_ID } from '../../src/db/tenant.js';
import { noteSecrets } from '../../src/queries/notes.queries.js';
import { patientSecrets, type PatientRow } from '../../src/queries/patients.queries.js';
import { LocalFileStore } from '../../src/storage/file-store.js';
import { testCluster } from '../support/cluster.js';
import { buildCryptoFixture, type CryptoFixture } from '../support/crypto.js';
import { createTestDatabase, destroyTestDatabase, useTestDatabase, type TestDatabase } from '../support/db.js';
import { buildPatient, buildPractice, type BuiltPractice } from '../support/factories.js';
import { buildStaff } from '../support/staff.js';

/**
 * Backups (issue 17): one file per backup, every part under the backup's own key, a signed
 * manifest; restored into an empty database with every check the drill runs.
 */
describe('backups: create, verify, restore', function () {
  this.timeout(60_000);
  const t = useTestDatabase();
  let fx: CryptoFixture;
  let a: BuiltPractice;
  let b: BuiltPractice;
  let dir: string;
  let patient: { id: string; familyName: string };
  let fileId: string;
  const image = Buffer.alloc(200_000, 7);
  const targets: TestDatabase[] = [];
  const sourceUrl = () => onDatabase(testCluster().superuserUrl, t.current.name);

  /** A new, empty database (no tables) and file store to restore into. */
  async function emptyTarget(): Promise<{ t: TestDatabase; files: LocalFileStore; filesDir: string }> {
    const target = await createTestDatabase({ migrated: false });
    targets.push(target);
    const filesDir = await mkdtemp(path.join(os.tmpdir(), 'enamel-restore-files-'));
    return { t: target, files: new LocalFileStore(filesDir), filesDir };
  }

  before(async () => {
    fx = await buildCryptoFixture(t.current);
    dir = await mkdtemp(path.join(os.tmpdir(), 'enamel-backups-'));
    a = await buildPractice(t.current.owner, { slug: 'backup-a' });
    b = await buildPractice(t.current.owner, { slug: 'backup-b' });
    patient = await buildPatient(t.current.db, fx.keyring, a);
    await buildPatient(t.current.db, fx.keyring, b);
    const owner = (await buildStaff(t.current, { keyring: fx.keyring, now: Date.now }, a, { owner: true })).id;
    fileId = await t.current.db.withPractice(a.id, { kind: 'system', id: 'test' }, async (trx) => {
      const pc = new PracticeCrypto(fx.keyring, trx, a.id);
      const noteId = randomUUID();
      // A signed note: its guard refuses changes, so the restore must load it with the guards lifted.
      await trx('clinical_notes').insert({ id: noteId, practice_id: a.id, patient_id: patient.id, author_id: owner, location_id: a.locationIds[0], status: 'signed', signed_at: new Date(), content_hash: createHash('sha256').update('Tooth 14 restored.').digest('hex'), ...(await noteSecrets.seal(pc, noteId, { body: 'Tooth 14 restored.' })) });
      await audit.record(trx, { practiceId: a.id, actor: { kind: 'system', id: 'test' }, action: 'view', outcome: 'allowed', patientId: patient.id });
      return (await saveFile(pc, fx.files, Readable.from([image]))).id;
    });
    await t.current.db.withPractice(INSTALLATION_ID, { kind: 'system', id: 'test' }, (trx) => audit.record(trx, { practiceId: INSTALLATION_ID, actor: { kind: 'system', id: 'test' }, action: 'settings_change', outcome: 'allowed' }));
    await sealAll(t.current.db);
  });

  after(async () => {
    for (const target of targets) await destroyTestDatabase(target);
    await rm(dir, { recursive: true, force: true });
    await fx.cleanup();
  });

  it('create → restore into an empty database: rows, files, audit chains and encrypted values all come back; the checks are reported', async () => {
    const made = await createBackup({ url: sourceUrl(), files: fx.files }, dir, { provider: fx.keyring.provider });
    expect(path.basename(made.file)).to.match(/^enamel-backup-\d{8}T\d{6}Z-[a-f0-9]{8}\.enbak$/);
    const m = made.manifest;
    expect(m.tables.find((x) => x.name === 'patients')!.rows).to.equal(2);
    expect(m.tables.map((x) => x.name)).to.not.include.members(['http_sessions', 'knex_migrations']);
    expect(m.tables.findIndex((x) => x.name === 'practices')).to.be.lessThan(m.tables.findIndex((x) => x.name === 'patients'));
    expect(m.files.count).to.equal(1);
    expect(m.chains.map((c) => c.practiceId)).to.include.members([a.id, INSTALLATION_ID]);
    // Nothing in the file is readable without the backup key: no patient value, no table row.
    const raw = await readFile(made.file);
    expect(raw.includes(Buffer.from(patient.familyName))).to.equal(false);
    expect(raw.includes(Buffer.from('backup-a'))).to.equal(false);

    const target = await emptyTarget();
    const report = await restoreBackup(made.file, { ownerUrl: target.t.ownerUrl, runtimeUrl: target.t.runtimeUrl, files: target.files }, { provider: fx.keyring.provider });
    expect(report.rows).to.equal(m.tables.reduce((n, x) => n + x.rows, 0));
    expect(report.files).to.equal(1);
    expect(report.chains.map((c) => c.practiceId)).to.have.members([a.id, INSTALLATION_ID]); // b has no events yet: no chain
    expect(report.decrypted).to.be.greaterThan(10);
    expect(report.shredded).to.deep.equal([]);

    // The restored practice works as the original: the patient decrypts, the file opens, new ids do not collide.
    const db = target.t.db;
    const restored = await db.withPractice(a.id, { kind: 'system', id: 'test' }, async (trx) => {
      const pc = new PracticeCrypto(fx.keyring, trx, a.id);
      const row = await trx('patients').where({ id: patient.id }).first<PatientRow>();
      const values = await patientSecrets.open(pc, row);
      const bytes = await readFileFully(await openFile(pc, target.files, fileId));
      await audit.record(trx, { practiceId: a.id, actor: { kind: 'system', id: 'test' }, action: 'view', outcome: 'allowed' });
      return { family: values.family_name, bytes };
    });
    expect(restored.family).to.equal(patient.familyName);
    expect(restored.bytes.equals(image)).to.equal(true);
    // Row-level security and the guards are back on: the runtime role sees nothing without a practice, a signed note cannot change.
    expect(await target.t.app('patients').count<{ n: string }[]>({ n: '*' })).to.deep.equal([{ n: '0' }]);
    const rls = `SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind = 'r' ORDER BY 1`;
    const forcedSource = (await t.current.owner.raw<{ rows: unknown[] }>(rls)).rows;
    expect((await target.t.owner.raw<{ rows: unknown[] }>(rls)).rows, 'row-level security is enabled and forced as in the source').to.deep.equal(forcedSource);
    const triggers = `SELECT tgrelid::regclass::text AS t, tgname, tgenabled FROM pg_trigger WHERE NOT tgisinternal ORDER BY 1, 2`;
    expect((await target.t.owner.raw<{ rows: unknown[] }>(triggers)).rows, 'the guards are enabled as in the source').to.deep.equal((await t.current.owner.raw<{ rows: unknown[] }>(triggers)).rows);
    const edit = await db.withPractice(a.id, { kind: 'system', id: 'test' }, (trx) => trx('clinical_notes').update({ status: 'draft' })).catch((e: Error) => e);
    expect(edit).to.be.instanceOf(Error);
    // The restored chain goes on from its head.
    await sealAll(db);
  });

  it('verify passes a good backup and names the part whose chunk has one flipped byte', async () => {
    const made = await createBackup({ url: sourceUrl(), files: fx.files }, dir, { provider: fx.keyring.provider });
    const good = await verifyBackup(made.file, fx.keyring.provider);
    expect(good.ok).to.equal(true);

    const reader = await ArchiveReader.open(made.file);
    // Enamel's snapshot has a part per table; a pg_dump backup (a server pg_dump supports) one for the database.
    const victim = reader.parts.find((p) => p.name === 'db/patients') ?? reader.parts.find((p) => p.name === 'pg_dump/database')!;
    await reader.close();
    const handle = await open(made.file, 'r+');
    const at = victim.offset + Math.floor(victim.bytes / 2);
    const one = Buffer.alloc(1);
    await handle.read(one, 0, 1, at);
    one[0]! ^= 0x01;
    await handle.write(one, 0, 1, at);
    await handle.close();
    const bad = await verifyBackup(made.file, fx.keyring.provider);
    expect(bad.ok).to.equal(false);
    expect(!bad.ok && bad.problem.part).to.equal(victim.name);

    // A restore of it writes nothing.
    const target = await emptyTarget();
    const refused = await restoreBackup(made.file, { ownerUrl: target.t.ownerUrl, runtimeUrl: target.t.runtimeUrl, files: target.files }, { provider: fx.keyring.provider }).catch((e: Error) => e);
    expect((refused as Error).name).to.equal('BackupInvalidError');
    expect((refused as Error).message).to.include(victim.name);
    expect(await target.t.owner.schema.hasTable('patients')).to.equal(false);
  });

  it('a truncated file, a file that is not a backup and a manifest changed after signing all fail verification', async () => {
    const made = await createBackup({ url: sourceUrl(), files: fx.files }, dir, { provider: fx.keyring.provider });
    const bytes = await readFile(made.file);
    const cut = path.join(dir, 'cut.enbak');
    await import('node:fs/promises').then((fs) => fs.writeFile(cut, bytes.subarray(0, bytes.length - 100)));
    expect((await verifyBackup(cut, fx.keyring.provider)).ok).to.equal(false);
    const junk = path.join(dir, 'junk.enbak');
    await import('node:fs/promises').then((fs) => fs.writeFile(junk, 'hello'));
    const j = await verifyBackup(junk, fx.keyring.provider);
    expect(!j.ok && j.problem.part).to.equal('file');
    // Change a row count inside the manifest (same length), keep the old signature.
    const reader = await ArchiveReader.open(made.file);
    const manifestText = reader.manifestBytes.toString('utf8');
    await reader.close();
    const altered = manifestText.replace('"name":"patients","rows":2', '"name":"patients","rows":3');
    expect(altered).to.not.equal(manifestText);
    const forged = Buffer.from(bytes.toString('latin1').replace(manifestText, altered), 'latin1');
    const forgedFile = path.join(dir, 'forged.enbak');
    await import('node:fs/promises').then((fs) => fs.writeFile(forgedFile, forged));
    const f = await verifyBackup(forgedFile, fx.keyring.provider);
    expect(!f.ok && f.problem.part).to.equal('manifest');
  });

  it('restore into a database that holds data is refused and changes nothing', async () => {
    const latest = await createBackup({ url: sourceUrl(), files: fx.files }, dir, { provider: fx.keyring.provider });
    const before = await t.current.db.withPractice(a.id, { kind: 'system', id: 'test' }, (trx) => trx('patients').count<{ n: string }[]>({ n: '*' }));
    const refused = await restoreBackup(latest.file, { ownerUrl: t.current.ownerUrl, runtimeUrl: t.current.runtimeUrl, files: fx.files }, { provider: fx.keyring.provider }).catch((e: Error) => e);
    expect(refused).to.be.instanceOf(RestoreRefusedError);
    expect((refused as Error).message).to.include('not empty');
    const after = await t.current.db.withPractice(a.id, { kind: 'system', id: 'test' }, (trx) => trx('patients').count<{ n: string }[]>({ n: '*' }));
    expect(after).to.deep.equal(before);
  });

  it('a backup taken before a practice was shredded restores with that practice still unreadable; the others read', async () => {
    const made = await createBackup({ url: sourceUrl(), files: fx.files }, dir, { provider: fx.keyring.provider });
    await shredPractice(fx, b.id, { kind: 'operator', id: 'cli-test' });
    const target = await emptyTarget();
    const report = await restoreBackup(made.file, { ownerUrl: target.t.ownerUrl, runtimeUrl: target.t.runtimeUrl, files: target.files }, { provider: fx.keyring.provider });
    expect(report.shredded).to.deep.equal([b.id]);
    const unreadable = await target.t.db
      .withPractice(b.id, { kind: 'system', id: 'test' }, async (trx) => {
        const row = await trx('patients').first<PatientRow>();
        return patientSecrets.open(new PracticeCrypto(fx.keyring, trx, b.id), row);
      })
      .catch((e: unknown) => e);
    expect(unreadable).to.be.instanceOf(KeyDestroyedError);
    const readable = await target.t.db.withPractice(a.id, { kind: 'system', id: 'test' }, async (trx) => {
      const row = await trx('patients').where({ id: patient.id }).first<PatientRow>();
      return patientSecrets.open(new PracticeCrypto(fx.keyring, trx, a.id), row);
    });
    expect(readable.family_name).to.equal(patient.familyName);
  });

  it('retention keeps the newest backups by count and drops those past the age limit, never the newest', async () => {
    const all = await listBackups(dir);
    expect(all.length).to.be.greaterThan(2);
    const removed = await pruneBackups(dir, { keep: 2, maxAgeDays: 35 }, new Date());
    expect(removed).to.have.length(all.length - 2);
    expect((await listBackups(dir)).map((x) => x.file)).to.deep.equal(all.slice(0, 2).map((x) => x.file));
    const farFuture = new Date(Date.now() + 400 * 86_400_000);
    await pruneBackups(dir, { keep: 10, maxAgeDays: 35 }, farFuture);
    expect((await listBackups(dir)).map((x) => x.file), 'the newest stays whatever its age').to.deep.equal([all[0]!.file]);
  });

  it('a connection filtered by row-level security is refused instead of backing up nothing', async () => {
    const err = await createBackup({ url: t.current.runtimeUrl, files: fx.files }, dir, { provider: fx.keyring.provider }).catch((e: Error) => e);
    expect((err as Error).name).to.equal('SnapshotRoleError');
    expect((await listBackups(dir)).every((x) => !x.file.endsWith('.partial'))).to.equal(true);
    const leftovers = (await import('node:fs/promises').then((fs) => fs.readdir(dir))).filter((n) => n.endsWith('.partial'));
    expect(leftovers).to.deep.equal([]);
  });
});
