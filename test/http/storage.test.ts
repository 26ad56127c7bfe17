import { randomBytes } from 'node:crypto';
import { utimes } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { expect } from 'chai';
import type { Knex } from 'knex';
import sharp from 'sharp';
import { createLogger } from '../../src/config/logger.js';
import { PracticeCrypto } from '../../src/crypto/encrypted-columns.js';
import { saveFile } from '../../src/crypto/encrypted-files.js';
import { INSTALLATION_ID } from '../../src/db/tenant.js';
import { cleanupJob } from '../../src/jobs/retention.job.js';
import { runJob, type JobContext } from '../../src/jobs/scheduler.js';
import { LocalFileStore } from '../../src/storage/file-store.js';
import { STORAGE_FAILED_MESSAGE } from '../../src/uploads/multipart.js';
import { buildTestApp } from '../support/app.js';
import { buildCryptoFixture, type CryptoFixture } from '../support/crypto.js';
import { useTestDatabase } from '../support/db.js';
import { buildPatient, buildPractice, type BuiltPractice } from '../support/factories.js';
import { MemoryTransport } from '../support/mail.js';
import { buildStaff, signIn, testClock, type BuiltStaff } from '../support/staff.js';

/** Every blob the store holds (its objects, whatever their age). */
async function blobs(store: LocalFileStore): Promise<string[]> {
  const out: string[] = [];
  for await (const name of store.listObjects(new Date(Date.now() + 86_400_000))) out.push(name);
  return out;
}

describe('nothing half-written, and a clear word when storage fails', () => {
  const t = useTestDatabase();
  const clock = testClock();
  let fx: CryptoFixture;
  let p: BuiltPractice;
  let staff: BuiltStaff;
  let patientId: string;
  let photo: Buffer;
  const inPractice = <T>(fn: (trx: Knex.Transaction) => Promise<T>): Promise<T> => t.current.db.withPractice(p.id, { kind: 'system', id: 'test' }, fn);
  const rows = async () => ({
    documents: (await inPractice((trx) => trx('patient_documents').select('id'))).length,
    files: (await inPractice((trx) => trx('stored_files').select('id'))).length,
  });

  before(async () => {
    fx = await buildCryptoFixture(t.current);
    p = await buildPractice(t.current.owner, { slug: 'storage-http' });
    staff = await buildStaff(t.current, { keyring: fx.keyring, now: clock.now }, p, { roles: ['hygienist'] });
    patientId = (await buildPatient(t.current.db, fx.keyring, p)).id;
    photo = await sharp({ create: { width: 320, height: 240, channels: 3, background: { r: 200, g: 180, b: 170 } } }).jpeg().toBuffer();
  });
  after(() => fx?.cleanup());

  async function upload(app: ReturnType<typeof buildTestApp>['app']) {
    const b = await signIn(app, p.slug, staff, clock);
    const page = await b.form(`/p/${p.slug}/patients/${patientId}/documents`);
    return b.agent.post(`/p/${p.slug}/patients/${patientId}/documents`).field('_csrf', page.token).field('kind', 'intraoral_photo').attach('file', photo, 'photo.jpg');
  }

  it('a document whose audit insert fails leaves no blob on disk and no row (the rollback removes what was written)', async () => {
    const store = fx.files as LocalFileStore;
    const before = await blobs(store);
    await t.current.owner.raw(`
      CREATE FUNCTION test_fail_upload_audit() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN IF NEW.action = 'upload' THEN RAISE EXCEPTION 'audit store unavailable (test)'; END IF; RETURN NEW; END $$;
      CREATE TRIGGER test_fail_upload_audit BEFORE INSERT ON audit_events FOR EACH ROW EXECUTE FUNCTION test_fail_upload_audit();
    `);
    try {
      const built = buildTestApp(t.current, {}, { keyring: fx.keyring, clock: clock.now, files: store });
      const res = await upload(built.app);
      expect(res.status).to.equal(500);
    } finally {
      await t.current.owner.raw('DROP TRIGGER test_fail_upload_audit ON audit_events; DROP FUNCTION test_fail_upload_audit();');
    }
    expect(await rows()).to.deep.equal({ documents: 0, files: 0 });
    expect(await blobs(store), 'the original and its thumbnail were written, then removed').to.deep.equal(before);
    // And the same upload works once the audit log does: blob and row together.
    const ok = await upload(buildTestApp(t.current, {}, { keyring: fx.keyring, clock: clock.now, files: store }).app);
    expect(ok.status).to.equal(303);
    expect(await rows()).to.deep.equal({ documents: 1, files: 2 });
    expect((await blobs(store)).length).to.equal(before.length + 2);
  });

  it('the cleanup job sweeps a blob that no row names once it is an hour old (a process killed between the write and the commit), and keeps every blob with a row', async () => {
    const store = fx.files as LocalFileStore;
    const kept = await blobs(store);
    const { objectName: orphan } = await store.put(Readable.from([randomBytes(100)]));
    const { objectName: fresh } = await store.put(Readable.from([randomBytes(100)]));
    const old = new Date(Date.now() - 2 * 3_600_000);
    await utimes(path.join(fx.filesDir, orphan.slice(0, 2), orphan), old, old);
    for (const name of kept) await utimes(path.join(fx.filesDir, name.slice(0, 2), name), old, old);
    const ctx: JobContext = { db: t.current.db, provider: fx.keyring.provider, keyring: fx.keyring, transport: new MemoryTransport(), files: store, logger: createLogger('silent') };
    const r = await runJob(cleanupJob, ctx);
    expect(r.outcome === 'ok' && r.counts.orphan_blobs).to.equal(1);
    const after = await blobs(store);
    expect(after).to.not.include(orphan);
    expect(after, 'a young blob may be an upload in flight').to.include(fresh);
    expect(after).to.include.members(kept);
    // Blobs with rows still open.
    const fileIds = await inPractice((trx) => trx('stored_files').pluck('id'));
    expect(fileIds).to.have.length(2);
  });

  it('a store that cannot write gives the upload form again with “nothing was saved — tell your administrator” (503, not 500) and one installation alert', async () => {
    // Under /sys nothing can be created, not even by root: a store that refuses every write.
    const broken = new LocalFileStore(`/sys/fs/enamel-unwritable-${randomBytes(4).toString('hex')}`);
    const built = buildTestApp(t.current, {}, { keyring: fx.keyring, clock: clock.now, files: broken });
    const before = await rows();
    const res = await upload(built.app);
    expect(res.status).to.equal(503);
    expect(res.text).to.include(STORAGE_FAILED_MESSAGE).and.include('name="file"');
    expect(await rows()).to.deep.equal(before);
    await upload(built.app);
    const alerts = await t.current.db.withPractice(INSTALLATION_ID, { kind: 'system', id: 'test' }, (trx) => trx('security_alerts').where({ kind: 'storage_failed' }).select('severity'));
    expect(alerts).to.deep.equal([{ severity: 'critical' }]);
    expect(built.logs.some((l) => l.msg === 'file store could not write; upload refused')).to.equal(true);
    // The service-level writer raises the same typed error for any caller (rotation, seeds).
    const direct = await inPractice((trx) => saveFile(new PracticeCrypto(fx.keyring, trx, p.id), broken, Readable.from([Buffer.from('x')]))).then(() => 'saved', (e: Error) => e.name);
    expect(direct).to.equal('StorageError');
  });
});
