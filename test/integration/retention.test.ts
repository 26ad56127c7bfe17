import { randomUUID } from 'node:crypto';
import { access, mkdir, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import type { Knex } from 'knex';
import sharp from 'sharp';
import { sealAll } from '../../src/audit/sealer.js';
import { audit } from '../../src/audit/record.js';
import { INSTALLATION_ID, withPractice } from '../../src/db/tenant.js';
import { auditChainIds } from '../../src/queries/practices.queries.js';
import { auditVerifyFullJob } from '../../src/jobs/audit-verify.job.js';
import { verifyPractice } from '../../src/audit/verify.js';
import { createLogger } from '../../src/config/logger.js';
import { PracticeCrypto } from '../../src/crypto/encrypted-columns.js';
import { KeyDestroyedError } from '../../src/crypto/errors.js';
import { auditCheckpointJob } from '../../src/jobs/audit-checkpoint.job.js';
import { accessReviewsJob, inactiveAccountsJob } from '../../src/jobs/access-reviews.job.js';
import { cleanupJob, retentionJob } from '../../src/jobs/retention.job.js';
import { runJob, type JobContext } from '../../src/jobs/scheduler.js';
import { patientSecrets } from '../../src/queries/patients.queries.js';
import { noteSecrets } from '../../src/queries/notes.queries.js';
import { planSecrets } from '../../src/queries/plans.queries.js';
import { createOperator, terminatePractice, type OperatorActor } from '../../src/services/operators/operators.service.js';
import { buildTestApp } from '../support/app.js';
import { browser } from '../support/browser.js';
import { buildCryptoFixture, type CryptoFixture } from '../support/crypto.js';
import { useTestDatabase } from '../support/db.js';
import { buildPatient, buildPractice, type BuiltPractice } from '../support/factories.js';
import { MemoryTransport } from '../support/mail.js';
import { buildStaff, signIn, STAFF_PASSWORD, testClock, type BuiltStaff } from '../support/staff.js';

const DAY = 86_400_000;

describe('retention, legal holds, practice termination, access reviews, inactive accounts (scheduled jobs)', () => {
  const t = useTestDatabase();
  const clock = testClock(Date.UTC(2026, 9, 5, 12)); // 5 October 2026: the fourth quarter
  let fx: CryptoFixture;
  let ctx: JobContext;
  let built: ReturnType<typeof buildTestApp>;
  const run = async (job: typeof retentionJob) => {
    const r = await runJob(job, ctx);
    expect(r.outcome, job.name).to.equal('ok');
    return (r as { counts: Record<string, number> }).counts;
  };
  const inPractice = <T>(p: BuiltPractice, fn: (trx: Knex.Transaction) => Promise<T>): Promise<T> => t.current.db.withPractice(p.id, { kind: 'system', id: 'test' }, fn);

  before(async () => {
    fx = await buildCryptoFixture(t.current);
    ctx = { db: t.current.db, provider: fx.keyring.provider, keyring: fx.keyring, transport: new MemoryTransport(), files: fx.files, publicUrl: new URL('https://enamel.example'), logger: createLogger(process.env.DEBUG_JOBS ? 'error' : 'silent'), clock: clock.now };
    built = buildTestApp(t.current, {}, { keyring: fx.keyring, clock: clock.now, files: fx.files });
  });
  after(() => fx?.cleanup());

  describe('patients', () => {
    let p: BuiltPractice;
    let owner: BuiltStaff;

    /** A patient with a signed note, an accepted plan and a photo (uploaded through the app). */
    async function fullPatient(familyName: string): Promise<{ id: string; noteId: string; fileIds: string[] }> {
      const patient = await buildPatient(t.current.db, fx.keyring, p, { familyName, dateOfBirth: '1960-01-01' });
      const noteId = randomUUID();
      await inPractice(p, async (trx) => {
        const pc = new PracticeCrypto(fx.keyring, trx, p.id);
        await trx('clinical_notes').insert({ id: noteId, practice_id: p.id, patient_id: patient.id, author_id: owner.id, location_id: p.locationIds[0], status: 'signed', signed_at: new Date(clock.now()), content_hash: 'a'.repeat(64), ...(await noteSecrets.seal(pc, noteId, { body: `${familyName} note` })) });
        const planId = randomUUID();
        await trx('treatment_plans').insert({ id: planId, practice_id: p.id, patient_id: patient.id, status: 'presented', created_by: owner.id, ...(await planSecrets.seal(pc, planId, { title: 'Plan' })) });
        await trx('treatment_plans').where({ id: planId }).update({ status: 'accepted', decided_at: new Date(clock.now()), decided_by: `user:${owner.id}`, accepted_hash: 'b'.repeat(64) });
      });
      const b = await signIn(built.app, p.slug, owner, clock);
      const form = await b.form(`/p/${p.slug}/patients/${patient.id}/documents`);
      const jpeg = await sharp({ create: { width: 64, height: 48, channels: 3, background: '#ccc' } }).jpeg().toBuffer();
      expect((await b.agent.post(`/p/${p.slug}/patients/${patient.id}/documents`).field('_csrf', form.token).field('kind', 'intraoral_photo').attach('file', jpeg, 'x.jpg')).status).to.equal(303);
      const doc = await inPractice(p, (trx) => trx('patient_documents').where({ patient_id: patient.id }).first('file_id', 'thumb_file_id'));
      return { id: patient.id, noteId, fileIds: [doc.file_id, doc.thumb_file_id].filter(Boolean) };
    }

    before(async () => {
      p = await buildPractice(t.current.owner, { slug: 'retention-patients' });
      owner = await buildStaff(t.current, { keyring: fx.keyring, now: clock.now }, p, { owner: true });
    });

    it('a deleted patient is hidden at once and purged after the grace period (fields, files, search index); the audit rows stay and verify; a held patient survives', async () => {
      const gone = await fullPatient('Purgeable');
      const held = await fullPatient('Heldback');
      const blobOf = async (fileId: string) => {
        const name: string = (await inPractice(p, (trx) => trx('stored_files').where({ id: fileId }).first('object_name'))).object_name;
        return path.join(fx.filesDir, name.slice(0, 2), name);
      };
      const blobs = await Promise.all(gone.fileIds.map(blobOf));
      for (const b of blobs) await access(b); // the files exist before

      const b = await signIn(built.app, p.slug, owner, clock);
      const before = await b.form(`/p/${p.slug}/patients`);
      expect((await b.agent.post(`/p/${p.slug}/patients/search`).type('form').send({ _csrf: before.token, q: 'Purgeable' })).text, 'found before').to.include('Purgeable, Pat');
      for (const id of [gone.id, held.id]) {
        const page = await b.form(`/p/${p.slug}/patients/${id}/retention`);
        expect((await b.agent.post(`/p/${p.slug}/patients/${id}/deletion`).type('form').send({ _csrf: page.token, action: 'request' })).status).to.equal(303);
      }
      const page = await b.form(`/p/${p.slug}/patients/${held.id}/retention`);
      expect(page.text).to.include('Deletion was requested');
      expect((await b.agent.post(`/p/${p.slug}/patients/${held.id}/legal-hold`).type('form').send({ _csrf: page.token, action: 'on' })).status).to.equal(303);
      const bad = await b.agent.post(`/p/${p.slug}/patients/${held.id}/legal-hold`).type('form').send({ _csrf: page.token, action: 'maybe' });
      expect(bad.status).to.equal(400);

      // Soft: search no longer finds it.
      const search = await b.form(`/p/${p.slug}/patients`);
      const found = await b.agent.post(`/p/${p.slug}/patients/search`).type('form').send({ _csrf: search.token, q: 'Purgeable' });
      expect(found.status).to.equal(200);
      expect(found.text).to.not.include('Purgeable, Pat');

      expect(await run(retentionJob), 'within the grace period nothing goes').to.deep.include({ purged: 0 });
      clock.advance(31 * DAY);
      expect(await run(retentionJob)).to.deep.include({ purged: 1 });
      expect(await run(retentionJob), 'idempotent').to.deep.include({ purged: 0 });

      const left = (table: string, where: Record<string, unknown>) => inPractice(p, (trx) => trx(table).where(where).count<{ n: string }[]>({ n: '*' })).then((r) => Number(r[0]!.n));
      expect(await left('patients', { id: gone.id })).to.equal(0);
      for (const table of ['clinical_notes', 'treatment_plans', 'patient_documents']) expect(await left(table, { patient_id: gone.id }), table).to.equal(0);
      expect(await inPractice(p, (trx) => trx('stored_files').whereIn('id', gone.fileIds))).to.have.length(0);
      for (const blob of blobs) expect(await access(blob).then(() => 'there', () => 'gone'), 'blob').to.equal('gone');
      const index = await inPractice(p, async (trx) => trx('patients').whereIn('family_name_bidx', await patientSecrets.lookup(new PracticeCrypto(fx.keyring, trx, p.id), 'family_name', 'Purgeable')));
      expect(index, 'no blind index left').to.have.length(0);
      expect(await inPractice(p, (trx) => trx('patient_purges').where({ patient_id: gone.id }).first('counts'))).to.have.nested.property('counts.clinical_notes', 1);

      // The audit trail of the purged patient stays, and the chain still verifies.
      expect(await t.current.owner('audit_events').where({ practice_id: p.id, patient_id: gone.id }).pluck('action')).to.include.members(['upload', 'deletion_request', 'purge']);
      await sealAll(t.current.db);
      expect((await verifyPractice(t.current.db, fx.keyring.provider, p.id)).ok).to.equal(true);

      // The held one is whole, and the database itself refuses to purge it or to delete its signed note.
      expect(await left('patients', { id: held.id })).to.equal(1);
      expect(await left('clinical_notes', { patient_id: held.id })).to.equal(1);
      const refused = await inPractice(p, (trx) => trx.raw('SELECT enamel_purge_patient(?, ?)', [held.id, new Date(clock.now())])).then(() => 'purged', (e: Error) => e.message);
      expect(refused).to.include('not due for purge');
      const asOwner = await t.current.owner
        .transaction(async (trx) => {
          await trx.raw("SELECT set_config('app.practice_id', ?, true)", [p.id]);
          return trx('clinical_notes').where({ id: held.noteId }).delete();
        })
        .then((n) => `deleted ${n}`, (e: Error) => e.message);
      expect(asOwner).to.include('never deleted');
      const asApp = await inPractice(p, (trx) => trx('clinical_notes').where({ id: held.noteId }).delete()).then(() => 'deleted', (e: Error) => e.message);
      expect(asApp).to.include('permission denied');
    });

    it('a practice-wide legal hold blocks every patient purge until released; each hold change is audited', async () => {
      const patient = await fullPatient('Practiceheld');
      const b = await signIn(built.app, p.slug, owner, clock);
      const page = await b.form(`/p/${p.slug}/patients/${patient.id}/retention`);
      await b.agent.post(`/p/${p.slug}/patients/${patient.id}/deletion`).type('form').send({ _csrf: page.token, action: 'request' });
      const comp = await b.form(`/p/${p.slug}/compliance`);
      expect((await b.agent.post(`/p/${p.slug}/compliance/legal-hold`).type('form').send({ _csrf: comp.token, action: 'on' })).status).to.equal(303);
      clock.advance(40 * DAY);
      expect(await run(retentionJob)).to.deep.include({ purged: 0 });
      const comp2 = await (await signIn(built.app, p.slug, owner, clock)).form(`/p/${p.slug}/compliance`);
      expect(comp2.text).to.include('In place since');
      const b2 = await signIn(built.app, p.slug, owner, clock);
      const token = (await b2.form(`/p/${p.slug}/compliance`)).token;
      await b2.agent.post(`/p/${p.slug}/compliance/legal-hold`).type('form').send({ _csrf: token, action: 'off' });
      expect(await run(retentionJob)).to.deep.include({ purged: 1 });
      const holds = await t.current.owner('audit_events').where({ practice_id: p.id, resource_type: 'practice' }).whereIn('action', ['legal_hold', 'legal_hold_release']).pluck('action');
      expect(holds).to.deep.equal(['legal_hold', 'legal_hold_release']);
    });
  });

  describe('practice termination', () => {
    let op: OperatorActor;
    const meta = () => ({ ip: '127.0.0.1', requestId: 'req-termination-1', now: new Date(clock.now()) });

    before(async () => {
      const o = await createOperator(t.current.db.knex, fx.keyring.provider, { email: 'ops@platform.example', displayName: 'Ops' });
      op = { kind: 'operator', id: o.id, email: 'ops@platform.example', displayName: 'Ops' };
    });

    it('a terminated practice is readable during the tail and unreadable after (typed error), its rows and files purged, its last checkpoint kept', async () => {
      const q = await buildPractice(t.current.owner, { slug: 'retention-ending' });
      const qOwner = await buildStaff(t.current, { keyring: fx.keyring, now: clock.now }, q, { owner: true });
      const patient = await buildPatient(t.current.db, fx.keyring, q, { familyName: 'Tailender' });
      const envelope = await inPractice(q, (trx) => trx('patients').where({ id: patient.id }).first('id', 'family_name'));
      expect(envelope.family_name).to.be.instanceOf(Buffer);
      await sealAll(t.current.db);
      expect((await runJob(auditCheckpointJob, ctx)).outcome).to.equal('ok');

      expect(await terminatePractice(t.current.db, op, q.id, 20, meta())).to.deep.equal({ ok: false, error: 'The tail is 30 to 60 days.' });
      const ended = await terminatePractice(t.current.db, op, q.id, 45, meta());
      expect(ended.ok).to.equal(true);

      clock.advance(44 * DAY);
      await run(retentionJob);
      const during = await inPractice(q, async (trx) => (await patientSecrets.open(new PracticeCrypto(fx.keyring, trx, q.id), { ...envelope, id: patient.id })).family_name);
      expect(during, 'readable during the tail').to.equal('Tailender');
      const b = await signIn(built.app, q.slug, qOwner, clock); // the practice still works
      expect((await b.agent.get(`/p/${q.slug}/compliance`)).text).to.include('Service ends');

      clock.advance(2 * DAY);
      expect(await run(retentionJob)).to.deep.include({ practices: 1 });
      fx.keyring.evict(q.id);
      const after = await inPractice(q, (trx) => patientSecrets.open(new PracticeCrypto(fx.keyring, trx, q.id), { ...envelope, id: patient.id })).then(() => undefined, (e: unknown) => e);
      expect(after).to.be.instanceOf(KeyDestroyedError);
      // Every table with a practice_id, read in the practice's own context (forced RLS): only the record of what existed is left.
      const tables: string[] = await t.current.owner('information_schema.columns').where({ table_schema: 'public', column_name: 'practice_id' }).pluck('table_name');
      const left: Record<string, number> = {};
      for (const table of tables) {
        const n = Number((await inPractice(q, (trx) => trx(table).where({ practice_id: q.id }).count<{ n: string }[]>({ n: '*' })))[0]!.n);
        if (n > 0) left[table] = n;
      }
      // The audit log stays (ids and enums only), with its signed checkpoints and the key record.
      expect(Object.keys(left).sort()).to.deep.equal(['audit_checkpoints', 'audit_events', 'data_keys', 'key_events']);
      expect(await inPractice(q, (trx) => trx('data_keys').whereNot({ status: 'destroyed' }))).to.have.length(0);
      expect(await t.current.owner('practices').where({ id: q.id }).first('status', 'purged_at')).to.have.property('status', 'terminated');
      expect((await browser(built.app).agent.get(`/p/${q.slug}/sign-in`)).status, 'the practice is gone').to.equal(404);

      // Past its tail, the practice's audit events still verify, to the purge itself (its last event, signed).
      const actions = await inPractice(q, (trx) => trx('audit_events').orderBy('seq', 'desc').pluck('action'));
      expect(actions[0]).to.equal('purge');
      const verified = await verifyPractice(t.current.db, fx.keyring.provider, q.id);
      expect(verified).to.deep.include({ ok: true });
      expect((await runJob(auditVerifyFullJob, ctx)).outcome).to.equal('ok');
      const headSeq = Number(await inPractice(q, (trx) => trx('audit_events').max('seq as m').first().then((r) => r?.m)));
      expect(await inPractice(q, (trx) => trx('audit_checkpoints').where({ seq: headSeq }))).to.have.length(1);
      // The database refuses to delete them before the retention has passed, whoever asks.
      const early = await inPractice(q, (trx) => trx.raw('SELECT enamel_purge_practice_audit(?, ?)', [q.id, new Date(clock.now())])).then(() => 'purged', (e: Error) => e.message);
      expect(early).to.include('not due for purge');
      const direct = await withPractice(t.current.owner, q.id, { kind: 'system', id: 'test' }, (trx) => trx.raw('DELETE FROM audit_events WHERE practice_id = ?', [q.id])).then(() => 'deleted', (e: Error) => e.message);
      expect(direct).to.include('append-only');

      // Six years after termination (the practice's retention: the default), the trail goes, the checkpoints stay.
      clock.advance(5 * 365 * DAY);
      expect(await run(retentionJob)).to.deep.include({ audit_trails: 0 });
      expect(await inPractice(q, (trx) => trx('audit_events'))).to.not.have.length(0);
      clock.advance(366 * DAY);
      expect(await run(retentionJob)).to.deep.include({ audit_trails: 1 });
      expect(await inPractice(q, (trx) => trx('audit_events'))).to.have.length(0);
      expect(await inPractice(q, (trx) => trx('audit_checkpoints'))).to.not.have.length(0);
      expect(await t.current.owner('practices').where({ id: q.id }).first('audit_purged_at')).to.not.deep.equal({ audit_purged_at: null });
      const recorded = await t.current.owner('audit_events').where({ practice_id: INSTALLATION_ID, action: 'purge' }).pluck('details');
      expect(recorded.map((x: { target_id: string }) => x.target_id)).to.include(q.id);
      // A purged trail is no longer a chain to verify.
      expect(await auditChainIds(t.current.db.knex)).to.not.include(q.id);
    });

    it('the audit retention setting is honoured: ten years keeps the trail past six', async () => {
      const q = await buildPractice(t.current.owner, { slug: 'retention-ten-years' });
      await inPractice(q, (trx) => trx('practice_settings').update({ audit_retention_years: 10 }));
      await inPractice(q, (trx) => audit.record(trx, { practiceId: q.id, actor: { kind: 'system', id: 'test' }, action: 'view', outcome: 'allowed' }));
      expect((await terminatePractice(t.current.db, op, q.id, 30, meta())).ok).to.equal(true);
      const start = clock.now();
      clock.advance(31 * DAY);
      await run(retentionJob);
      const row = await t.current.owner('practices').where({ id: q.id }).first('terminated_at', 'audit_purge_after');
      expect(new Date(row.audit_purge_after).getUTCFullYear() - new Date(row.terminated_at).getUTCFullYear()).to.equal(10);
      clock.advance(7 * 365 * DAY);
      expect(await run(retentionJob)).to.deep.include({ audit_trails: 0 });
      expect(await inPractice(q, (trx) => trx('audit_events'))).to.not.have.length(0);
      clock.advance(start + 10 * 366 * DAY - clock.now());
      expect(await run(retentionJob)).to.deep.include({ audit_trails: 1 });
    });

    it('a practice under legal hold is not purged after its tail', async () => {
      const h = await buildPractice(t.current.owner, { slug: 'retention-held' });
      await buildPatient(t.current.db, fx.keyring, h, { familyName: 'Keptforcourt' });
      expect((await terminatePractice(t.current.db, op, h.id, 30, meta())).ok).to.equal(true);
      await inPractice(h, (trx) => trx('practices').update({ legal_hold_at: new Date(clock.now()) }));
      clock.advance(31 * DAY);
      await run(retentionJob);
      expect(await inPractice(h, (trx) => trx('patients'))).to.have.length(1);
      expect(await inPractice(h, (trx) => trx('data_keys').where({ status: 'destroyed' }))).to.have.length(0);
    });
  });

  describe('access reviews and inactive accounts', () => {
    let r: BuiltPractice;
    let owner: BuiltStaff;
    let hygienist: BuiltStaff;
    let manager: BuiltStaff;

    before(async () => {
      r = await buildPractice(t.current.owner, { slug: 'retention-reviews' });
      // An evaluation practice that relaxed MFA to administrators: the hygienist signs in without it (and is flagged).
      await inPractice(r, (trx) => trx('practice_settings').update({ mfa_required_for_all: false }));
      owner = await buildStaff(t.current, { keyring: fx.keyring, now: clock.now }, r, { owner: true, name: 'Olive Owner' });
      hygienist = await buildStaff(t.current, { keyring: fx.keyring, now: clock.now }, r, { roles: ['hygienist'], mfa: false, name: 'Hana Hygienist' });
      manager = await buildStaff(t.current, { keyring: fx.keyring, now: clock.now }, r, { roles: ['office_manager'], name: 'Max Manager' });
    });

    it('a quarterly review lists every active account with the right flags; revoking ends that user’s session; sign-off needs every line decided; an overdue review alerts once and shows a banner', async () => {
      const hyg = await signIn(built.app, r.slug, hygienist, clock);
      await signIn(built.app, r.slug, owner, clock);
      await inPractice(r, (trx) => trx('users').where({ id: manager.id }).update({ last_login_at: new Date(clock.now() - 120 * DAY) }));
      await run(accessReviewsJob);
      await run(accessReviewsJob); // idempotent: one review per quarter
      const reviews = await inPractice(r, (trx) => trx('access_reviews').select('id', 'period'));
      const quarter = `${new Date(clock.now()).getUTCFullYear()}-Q${Math.floor(new Date(clock.now()).getUTCMonth() / 3) + 1}`;
      expect(reviews.map((x: { period: string }) => x.period)).to.deep.equal([quarter]);
      const items = await inPractice(r, (trx) => trx('access_review_items').where({ review_id: reviews[0].id }).select('id', 'user_id', 'flags'));
      const flags = Object.fromEntries(items.map((i: { user_id: string; flags: string[] }) => [i.user_id, [...i.flags].sort()]));
      expect(flags[owner.id]).to.deep.equal(['privileged']);
      expect(flags[hygienist.id]).to.deep.equal(['no_mfa']);
      expect(flags[manager.id]).to.deep.equal(['privileged', 'unused_90_days']);

      const b = await signIn(built.app, r.slug, owner, clock);
      const page = await b.form(`/p/${r.slug}/access-reviews/${reviews[0].id}`);
      expect(page.text).to.include('Hana Hygienist').and.include('no mfa');
      const early = await b.agent.post(`/p/${r.slug}/access-reviews/${reviews[0].id}/sign-off`).type('form').send({ _csrf: page.token, name: 'Olive Owner' });
      expect(early.status).to.equal(409);
      expect(early.text).to.include('Keep or revoke every line first');
      const line = (userId: string) => items.find((i: { user_id: string }) => i.user_id === userId).id;
      const selfRevoke = await b.agent.post(`/p/${r.slug}/access-review-items/${line(owner.id)}`).type('form').send({ _csrf: page.token, decision: 'revoke' });
      expect(selfRevoke.status).to.equal(409);
      expect((await b.agent.post(`/p/${r.slug}/access-review-items/${line(hygienist.id)}`).type('form').send({ _csrf: page.token, decision: 'revoke' })).status).to.equal(303);
      expect((await hyg.agent.get(`/p/${r.slug}/home`)).status, 'the revoked user is signed out at once').to.equal(303);
      expect(await inPractice(r, (trx) => trx('users').where({ id: hygienist.id }).first('status', 'deactivated_reason'))).to.deep.equal({ status: 'deactivated', deactivated_reason: 'access_review' });
      for (const u of [owner.id, manager.id]) await b.agent.post(`/p/${r.slug}/access-review-items/${line(u)}`).type('form').send({ _csrf: page.token, decision: 'keep' });
      expect((await b.agent.post(`/p/${r.slug}/access-reviews/${reviews[0].id}/sign-off`).type('form').send({ _csrf: page.token, name: 'Olive Owner' })).status).to.equal(303);
      expect(await b.agent.get(`/p/${r.slug}/access-reviews/${reviews[0].id}`).then((x) => x.text)).to.include('Signed off by <strong>Olive Owner</strong>');

      // Next quarter: a new review; left unsigned past its due date, it alerts (once) and owners see a banner.
      clock.advance(90 * DAY);
      await run(accessReviewsJob);
      clock.advance(31 * DAY);
      await run(accessReviewsJob);
      await run(accessReviewsJob);
      const alerts = await inPractice(r, (trx) => trx('security_alerts').where({ kind: 'review_overdue' }));
      expect(alerts).to.have.length(1);
      const again = await signIn(built.app, r.slug, owner, clock);
      expect((await again.agent.get(`/p/${r.slug}/home`)).text).to.include('An access review is overdue');
      const signedOff = (await again.agent.get(`/p/${r.slug}/compliance`)).text;
      expect(signedOff).to.include('overdue').and.include(quarter);
    });

    it('an account unused for the practice’s period is disabled automatically and cannot sign in; owners are told; owners are never disabled', async () => {
      const r2 = await buildPractice(t.current.owner, { slug: 'retention-inactive' });
      const o = await buildStaff(t.current, { keyring: fx.keyring, now: clock.now }, r2, { owner: true });
      const idle = await buildStaff(t.current, { keyring: fx.keyring, now: clock.now }, r2, { roles: ['front_desk'], mfa: false });
      const busy = await buildStaff(t.current, { keyring: fx.keyring, now: clock.now }, r2, { roles: ['front_desk'], mfa: false });
      await inPractice(r2, (trx) => trx('users').whereIn('id', [o.id, idle.id, busy.id]).update({ last_login_at: new Date(clock.now() - 91 * DAY) }));
      await inPractice(r2, (trx) => trx('users').where({ id: busy.id }).update({ last_login_at: new Date(clock.now() - 10 * DAY) }));
      const counts = await run(inactiveAccountsJob);
      expect(counts.disabled).to.be.greaterThanOrEqual(1);
      const status = await inPractice(r2, (trx) => trx('users').select('id', 'status', 'deactivated_reason'));
      const by = Object.fromEntries(status.map((u: { id: string; status: string }) => [u.id, u.status]));
      expect(by).to.deep.equal({ [o.id]: 'active', [idle.id]: 'deactivated', [busy.id]: 'active' });
      const g = browser(built.app);
      const form = await g.form(`/p/${r2.slug}/sign-in`);
      const attempt = await g.agent.post(`/p/${r2.slug}/sign-in`).type('form').send({ _csrf: form.token, email: idle.email, password: STAFF_PASSWORD });
      expect(attempt.status).to.not.equal(303);
      expect(await inPractice(r2, (trx) => trx('security_alerts').where({ kind: 'accounts_disabled' }))).to.have.length(1);
      expect(await inPractice(r2, (trx) => trx('outbox_messages').where({ template: 'accounts_disabled_notice' }))).to.have.length(1);
    });

    it('the cleanup job removes expired sessions, reset tokens, old patient links and stale temporary files', async () => {
      const before = Number((await t.current.owner('http_sessions').count<{ n: string }[]>({ n: '*' }))[0]!.n);
      expect(before).to.be.greaterThan(0);
      const patient = await buildPatient(t.current.db, fx.keyring, r, { familyName: 'Linkcleaner' });
      await inPractice(r, (trx) => trx('patient_links').insert({ id: randomUUID(), practice_id: r.id, patient_id: patient.id, tasks: ['uploads'], code_hash: 'e'.repeat(64), created_by: owner.id, created_at: new Date(clock.now()), expires_at: new Date(clock.now() + DAY) }));
      await inPractice(r, (trx) => trx('password_reset_tokens').insert({ practice_id: r.id, user_id: owner.id, token_hash: 'f'.repeat(64), expires_at: new Date(clock.now() + 60_000), created_at: new Date(clock.now()) }));
      const temp = path.join(fx.filesDir, 'tmp', `${'a'.repeat(32)}.${'b'.repeat(8)}.part`);
      await mkdir(path.dirname(temp), { recursive: true });
      await writeFile(temp, 'half a file');
      await utimes(temp, new Date(clock.now() - 2 * DAY), new Date(clock.now() - 2 * DAY));
      const kept = path.join(fx.filesDir, 'tmp', 'not-ours.txt');
      await writeFile(kept, 'left alone');
      clock.advance(30 * DAY);
      expect(await run(cleanupJob), 'a link within 90 days of its expiry stays').to.deep.include({ sessions: before, patient_links: 0, reset_tokens: 1, temp_files: 1 });
      expect(Number((await t.current.owner('http_sessions').count<{ n: string }[]>({ n: '*' }))[0]!.n)).to.equal(0);
      expect(await access(temp).then(() => 'there', () => 'gone'), 'stale temp file').to.equal('gone');
      clock.advance(400 * DAY);
      expect(await run(cleanupJob)).to.deep.include({ sessions: 0, patient_links: 1, temp_files: 0 });
      expect(await access(kept).then(() => 'there', () => 'gone'), 'other files').to.equal('there');
    });
  });
});
