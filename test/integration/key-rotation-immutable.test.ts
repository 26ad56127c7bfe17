import { createHash, randomUUID } from 'node:crypto';
import { expect } from 'chai';
import type { Knex } from 'knex';
import { PracticeCrypto, encryptedTables } from '../../src/crypto/encrypted-columns.js';
import { RotationFailedError } from '../../src/crypto/errors.js';
import { encryptField, fieldKeyVersion } from '../../src/crypto/field-cipher.js';
import { keyStatus, resumeAllRotations, rotateDataKey, runRotation } from '../../src/crypto/key-management.js';
import { withPractice } from '../../src/db/tenant.js';
import { enqueue } from '../../src/messaging/outbox.js';
import { alertSecrets } from '../../src/queries/alerts.queries.js';
import { documentSecrets } from '../../src/queries/documents.queries.js';
import { submissionSecrets } from '../../src/queries/forms.queries.js';
import { amendmentSecrets, noteSecrets } from '../../src/queries/notes.queries.js';
import { breakGlassSecrets } from '../../src/queries/patients.queries.js';
import { decisionSecrets, planItemSecrets, planSecrets } from '../../src/queries/plans.queries.js';
import { planContentHash, type ItemContent } from '../../src/services/patients/plans.service.js';
import { buildCryptoFixture, createTestRecordsTable, type CryptoFixture } from '../support/crypto.js';
import { useTestDatabase } from '../support/db.js';
import { buildPatient, buildPractice, type BuiltPractice } from '../support/factories.js';
import { buildStaff, testClock } from '../support/staff.js';
import { tamperAsSuperuser } from '../support/superuser.js';
import { rememberPhi } from '../support/phi-scan.js';
import '../../src/queries/encrypted-tables.js';

const sha256 = (s: string) => createHash('sha256').update(s, 'utf8').digest('hex');
const actor = { kind: 'operator', id: 'cli-test' } as const;

/**
 * Issue 14: `enamel keys rotate --purpose fields` on a practice with signed notes, decided plans and
 * signed forms used to stop at the first signed note. Re-encryption may now change the ciphertext
 * of immutable rows — and nothing else.
 */
describe('key rotation over immutable records (signed notes, decided plans, submissions, decisions)', () => {
  const t = useTestDatabase();
  const clock = testClock();
  let fx: CryptoFixture;

  before(async () => {
    fx = await buildCryptoFixture(t.current);
    // The crypto fixture's stand-in table is in the rotation registry of this process.
    await createTestRecordsTable(t.current.owner);
    rememberPhi('Rotatable');
  });
  after(() => fx?.cleanup());

  /** Writes one row of every guarded kind, as the app would have (owner role, tenant context). */
  async function populate(p: BuiltPractice): Promise<{ noteId: string; amendmentId: string; planId: string; title: string; items: (ItemContent & { id: string; phase: number })[]; decisionId: string; submissionId: string; documentId: string; grantId: string; alertId: string }> {
    const author = await buildStaff(t.current, { keyring: fx.keyring, now: clock.now }, p, { roles: ['provider'] });
    const patient = await buildPatient(t.current.db, fx.keyring, p, { familyName: 'Rotatable' });
    const ids = { noteId: randomUUID(), amendmentId: randomUUID(), planId: randomUUID(), decisionId: randomUUID(), submissionId: randomUUID(), documentId: randomUUID(), grantId: randomUUID(), alertId: randomUUID(), linkId: randomUUID() };
    const title = 'Rotatable crown plan';
    const items: (ItemContent & { id: string; phase: number })[] = [{ id: randomUUID(), phase: 1, cdt: 'D2740', tooth: '14', surfaces: null, description: 'Crown', fee: 120000, insurance: 60000 }];
    await t.current.owner.transaction((owner) =>
      withPractice(owner, p.id, { kind: 'system', id: 'test' }, async (trx) => {
        const pc = new PracticeCrypto(fx.keyring, trx, p.id);
        const body = 'Signed note body of Rotatable';
        await trx('clinical_notes').insert({ id: ids.noteId, practice_id: p.id, patient_id: patient.id, author_id: author.id, location_id: p.locationIds[0], status: 'signed', signed_at: new Date(), content_hash: sha256(body), ...(await noteSecrets.seal(pc, ids.noteId, { body })) });
        const amendment = 'Amendment of Rotatable';
        await trx('clinical_note_amendments').insert({ id: ids.amendmentId, practice_id: p.id, note_id: ids.noteId, author_id: author.id, content_hash: sha256(amendment), ...(await amendmentSecrets.seal(pc, ids.amendmentId, { body: amendment })) });
        await trx('treatment_plans').insert({ id: ids.planId, practice_id: p.id, patient_id: patient.id, status: 'draft', created_by: author.id, ...(await planSecrets.seal(pc, ids.planId, { title })) });
        for (const { id, phase, ...content } of items) await trx('treatment_plan_items').insert({ id, practice_id: p.id, plan_id: ids.planId, phase, ...(await planItemSecrets.seal(pc, id, { content })) });
        await trx('treatment_plans').where({ id: ids.planId }).update({ status: 'accepted', presented_at: new Date(), decided_at: new Date(), decided_by: `patient_link:${ids.linkId}`, accepted_hash: planContentHash(ids.planId, title, items) });
        await trx('plan_decisions').insert({ id: ids.decisionId, practice_id: p.id, plan_id: ids.planId, link_id: ids.linkId, decision: 'accepted', plan_hash: planContentHash(ids.planId, title, items), decided_at: new Date(), ...(await decisionSecrets.seal(pc, ids.decisionId, { signer: { fullName: 'Pat Rotatable', signature: 'Pat Rotatable', drawing: null } })) });
        const version = await trx('form_template_versions').first<{ id: string }>('id');
        await trx('form_submissions').insert({ id: ids.submissionId, practice_id: p.id, patient_id: patient.id, template_version_id: version!.id, link_id: ids.linkId, content_hash: 'e'.repeat(64), submitted_at: new Date(), ...(await submissionSecrets.seal(pc, ids.submissionId, { content: { answers: { allergies: 'Rotatable penicillin' }, signer: { fullName: 'Pat Rotatable', signature: 'P', drawing: null } } })) });
        await trx('patient_documents').insert({ id: ids.documentId, practice_id: p.id, patient_id: patient.id, kind: 'other', content_type: 'application/pdf', file_id: randomUUID(), byte_size: 10, uploaded_by: author.id, ...(await documentSecrets.seal(pc, ids.documentId, { title: 'Rotatable referral letter' })) });
        await trx('break_glass_grants').insert({ id: ids.grantId, practice_id: p.id, user_id: author.id, patient_id: patient.id, reason_code: 'emergency', granted_at: new Date(), expires_at: new Date(Date.now() + 3_600_000), ...(await breakGlassSecrets.seal(pc, ids.grantId, { justification: 'Rotatable was in pain' })) });
        await enqueue(trx, fx.keyring, { practiceId: p.id, template: 'patient_link_email', to: 'rotatable@example.com', params: { practiceName: 'Rotation Dental', link: 'https://enamel.example/l/x' } });
        await trx('security_alerts').insert({ id: ids.alertId, practice_id: p.id, kind: 'break_glass', severity: 'warning', acknowledged_by: author.id, acknowledged_at: new Date(), ...(await alertSecrets.seal(pc, ids.alertId, { acknowledged_note: 'Checked with Rotatable' })) });
      }),
    );
    return { ...ids, title, items };
  }

  const inPractice = <T>(p: BuiltPractice, fn: (trx: Knex.Transaction) => Promise<T>): Promise<T> => t.current.db.withPractice(p.id, { kind: 'system', id: 'test' }, fn);

  it('`keys rotate --purpose fields` finishes; every row decrypts under the new version, the old is destroyed, content hashes are unchanged, and a direct UPDATE of a signed note is still refused', async () => {
    const p = await buildPractice(t.current.owner, { slug: 'rotate-immutable' });
    const r = await populate(p);
    const hashesBefore = await inPractice(p, async (trx) => ({
      note: (await trx('clinical_notes').where({ id: r.noteId }).first('content_hash')).content_hash,
      amendment: (await trx('clinical_note_amendments').where({ id: r.amendmentId }).first('content_hash')).content_hash,
      plan: (await trx('treatment_plans').where({ id: r.planId }).first('accepted_hash')).accepted_hash,
      decision: (await trx('plan_decisions').where({ id: r.decisionId }).first('plan_hash')).plan_hash,
      submission: (await trx('form_submissions').where({ id: r.submissionId }).first('content_hash')).content_hash,
    }));

    const job = await rotateDataKey(fx, p.id, 'fields', actor);
    const done = await runRotation(fx, p.id, job.id, actor, { batchSize: 3 });
    expect(done).to.include({ status: 'done', error_code: null });

    // Every encrypted value of every declared table is under v2, and opens.
    for (const def of encryptedTables().filter((x) => x.table !== 'test_records')) {
      const rows = (await inPractice(p, (trx) => trx(def.table).select('*'))) as ({ id: string } & Record<string, unknown>)[];
      for (const row of rows) {
        for (const column of Object.keys(def.columns)) {
          const v = row[column];
          if (Buffer.isBuffer(v)) expect(fieldKeyVersion(v), `${def.table}.${column}`).to.equal(2);
        }
        await inPractice(p, (trx) => def.open(new PracticeCrypto(fx.keyring, trx, p.id), row));
      }
    }
    const status = await keyStatus(fx, actor);
    expect(status.keys.filter((k) => k.practiceId === p.id && k.purpose === 'fields').map((k) => [k.version, k.status])).to.deep.equal([[1, 'destroyed'], [2, 'active']]);

    // The content is what was signed: hashes unchanged, and they still match the decrypted content.
    const after = await inPractice(p, async (trx) => {
      const pc = new PracticeCrypto(fx.keyring, trx, p.id);
      const note = await trx('clinical_notes').where({ id: r.noteId }).first();
      const amendment = await trx('clinical_note_amendments').where({ id: r.amendmentId }).first();
      const plan = await trx('treatment_plans').where({ id: r.planId }).first();
      const items = await trx('treatment_plan_items').where({ plan_id: r.planId }).select('*');
      const opened = [];
      for (const it of items) opened.push({ ...((await planItemSecrets.open(pc, it)).content as ItemContent), id: it.id, phase: it.phase });
      return {
        note: note.content_hash,
        noteMatches: sha256((await noteSecrets.open(pc, note)).body!) === note.content_hash,
        amendment: amendment.content_hash,
        amendmentMatches: sha256((await amendmentSecrets.open(pc, amendment)).body!) === amendment.content_hash,
        plan: plan.accepted_hash,
        planMatches: planContentHash(r.planId, (await planSecrets.open(pc, plan)).title!, opened) === plan.accepted_hash,
        decision: (await trx('plan_decisions').where({ id: r.decisionId }).first('plan_hash')).plan_hash,
        submission: (await trx('form_submissions').where({ id: r.submissionId }).first('content_hash')).content_hash,
      };
    });
    expect(after).to.deep.equal({ ...hashesBefore, noteMatches: true, amendmentMatches: true, planMatches: true });

    // And the locks hold: a signed note's body cannot be rewritten — not by the app, not with the marker outside a rotation, not by the owner role.
    const forged = await inPractice(p, async (trx) => {
      const { key, version } = await fx.keyring.active(trx, p.id, 'fields');
      return encryptField(key, version, Buffer.from('A forged body'), { practiceId: p.id, table: 'clinical_notes', column: 'body', rowId: r.noteId });
    });
    const attempt = (fn: (trx: Knex.Transaction) => Promise<unknown>) => fn as (trx: Knex.Transaction) => Promise<unknown>;
    for (const [who, run] of [
      ['app', () => inPractice(p, attempt((trx) => trx('clinical_notes').where({ id: r.noteId }).update({ body: forged })))],
      ['app with the marker', () => inPractice(p, attempt(async (trx) => { await trx.raw("SELECT set_config('enamel.reencrypt', 'fields:2', true)"); return trx('clinical_notes').where({ id: r.noteId }).update({ body: forged }); }))],
      ['owner role with the marker', () => t.current.owner.transaction((o) => withPractice(o, p.id, { kind: 'system', id: 'test' }, async (trx) => { await trx.raw("SELECT set_config('enamel.reencrypt', 'fields:2', true)"); return trx('clinical_notes').where({ id: r.noteId }).update({ body: forged }); }))],
      ['app on a submission', () => inPractice(p, attempt((trx) => trx('form_submissions').where({ id: r.submissionId }).update({ content: forged })))],
      ['app on a decided plan item', () => inPractice(p, attempt((trx) => trx('treatment_plan_items').where({ plan_id: r.planId }).update({ content: forged })))],
      ['app on a decision', () => inPractice(p, attempt((trx) => trx('plan_decisions').where({ id: r.decisionId }).update({ signer: forged })))],
    ] as const) {
      const outcome = await run().then(() => 'changed', (e: Error) => e.message);
      expect(outcome, who).to.match(/cannot be changed|can only change by re-encryption/);
    }
    // Even during a running rotation, a change of anything but the ciphertext is refused.
    const job2 = await rotateDataKey(fx, p.id, 'fields', actor);
    const sneaky = await inPractice(p, async (trx) => {
      await trx.raw("SELECT set_config('enamel.reencrypt', ?, true)", [`fields:${job2.to_version}`]);
      return trx('clinical_notes').where({ id: r.noteId }).update({ content_hash: 'f'.repeat(64) });
    }).then(() => 'changed', (e: Error) => e.message);
    expect(sneaky).to.include('cannot be changed');
    expect((await runRotation(fx, p.id, job2.id, actor)).status).to.equal('done');
  });

  it('a failing batch marks the job failed with the reason instead of leaving it running; resuming one purpose is not blocked by another', async () => {
    const q = await buildPractice(t.current.owner, { slug: 'rotate-failing' });
    const r = await populate(q);
    // A signed note whose stored hash no longer matches its body (tampering): the rotation must not re-seal it.
    await tamperAsSuperuser(t.current.name, 'UPDATE clinical_notes SET content_hash = ? WHERE id = ?', ['0'.repeat(64), r.noteId]);
    const fields = await rotateDataKey(fx, q.id, 'fields', actor);
    const failed = await runRotation(fx, q.id, fields.id, actor).then(() => undefined, (e: unknown) => e);
    expect(failed).to.be.instanceOf(RotationFailedError);
    const row = await inPractice(q, (trx) => trx('key_rotations').where({ id: fields.id }).first('status', 'error_code', 'error_table'));
    expect(row).to.deep.equal({ status: 'failed', error_code: 'ContentHashMismatchError', error_table: 'clinical_notes' });
    // Nothing of the failed batch was written: the note is still under v1 and readable.
    const note = await inPractice(q, (trx) => trx('clinical_notes').where({ id: r.noteId }).first('body'));
    expect(fieldKeyVersion(note.body)).to.equal(1);
    expect(String(await rotateDataKey(fx, q.id, 'fields', actor).catch((e: Error) => e.message))).to.include('keys resume');

    // Another purpose still rotates, and `keys resume` finishes it while reporting the failed one.
    const index = await rotateDataKey(fx, q.id, 'blind-index', actor);
    const resumed = await resumeAllRotations(fx, actor);
    expect(resumed.failed.map((f) => [f.jobId, f.code, f.table])).to.deep.equal([[fields.id, 'ContentHashMismatchError', 'clinical_notes']]);
    expect(await inPractice(q, (trx) => trx('key_rotations').where({ id: index.id }).first('status'))).to.deep.equal({ status: 'done' });

    // Once the cause is fixed, resume finishes the fields job from where it stopped.
    await tamperAsSuperuser(t.current.name, 'UPDATE clinical_notes SET content_hash = ? WHERE id = ?', [sha256('Signed note body of Rotatable'), r.noteId]);
    const again = await resumeAllRotations(fx, actor);
    expect(again.failed).to.deep.equal([]);
    expect(await inPractice(q, (trx) => trx('key_rotations').where({ id: fields.id }).first('status', 'error_code'))).to.deep.equal({ status: 'done', error_code: null });
  });
});
