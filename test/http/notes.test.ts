import { useStaffApp, type StaffApp } from '../support/staff-app.js';
import { createHash, randomUUID } from 'node:crypto';
import { expect } from 'chai';
import type { CryptoFixture } from '../support/crypto.js';
import { buildPatient, type BuiltPractice } from '../support/factories.js';
import { buildStaff, signIn, type BuiltStaff } from '../support/staff.js';
import { PracticeCrypto } from '../../src/crypto/encrypted-columns.js';
import { breakGlassSecrets } from '../../src/queries/patients.queries.js';
import { rememberPhi } from '../support/phi-scan.js';

describe('clinical notes: sign, lock, amend; front desk never reads them', () => {
  const { t, clock, inPractice } = useStaffApp({ slug: 'notes-http', locations: ['North', 'South'] }, (s) => ({ fx, p, built } = s));
  let fx: CryptoFixture;
  let p: BuiltPractice;
  let provider: BuiltStaff;
  let patientId: string;
  let built: StaffApp['built'];
  const notesPath = () => `/p/${p.slug}/patients/${patientId}/notes`;
  const events = (where: Record<string, unknown>) => t.current.owner('audit_events').where({ practice_id: p.id, ...where }).orderBy('id').select('action', 'outcome', 'patient_id', 'actor_id', 'details', 'resource_id');

  before(async () => {
    rememberPhi('MOD composite', 'tolerated well', 'tooth #15', 'perio charting', 'pockets UR', 'Seen while covering', 'covering the North office');
    provider = await buildStaff(t.current, { keyring: fx.keyring, now: clock.now }, p, { roles: ['provider'], locations: [p.locationIds[0]!], name: 'Dr Notes' });
    patientId = (await buildPatient(t.current.db, fx.keyring, p, { locationId: p.locationIds[0] })).id;
  });

  it('a signed note is encrypted, carries the hash of its text, and is locked — in the app and in the database', async () => {
    const b = await signIn(built.app, p.slug, provider, clock);
    const page = await b.form(notesPath());
    const body = 'MOD composite #14; patient tolerated well.';
    expect((await b.agent.post(notesPath()).type('form').send({ _csrf: page.token, body, action: 'sign' })).status).to.equal(303);
    const row = await inPractice((trx) => trx('clinical_notes').where({ patient_id: patientId }).first('id', 'body', 'status', 'content_hash'));
    expect(row.status).to.equal('signed');
    expect(row.content_hash).to.equal(createHash('sha256').update(body).digest('hex'));
    expect(row.body.toString('latin1')).to.not.include('composite');
    const shown = (await b.agent.get(notesPath())).text;
    expect(shown).to.include(body);
    // The header says who wrote it, when, and that it is signed; the full hash waits inside a details element.
    expect(shown).to.match(/<h2><span>Dr Notes<\/span> <span class="muted">[^<]+<\/span> <span class="badge signed">Signed<\/span><\/h2>/);
    expect(shown).to.match(new RegExp(`<details class="integrity"><summary>Integrity check</summary><p>SHA-256 of the signed text: <code>${row.content_hash}</code>`));

    const edit = await b.agent.post(`/p/${p.slug}/notes/${row.id}`).type('form').send({ _csrf: page.token, body: 'rewritten', action: 'draft' });
    expect(edit.status).to.equal(409);
    expect(edit.text).to.include('signed and locked');
    let dbError = '';
    await inPractice((trx) => trx('clinical_notes').where({ id: row.id }).update({ status: 'draft', signed_at: null, content_hash: null })).catch((e: Error) => (dbError = e.message));
    expect(dbError).to.include('cannot be changed');
    const after = await inPractice((trx) => trx('clinical_notes').where({ id: row.id }).first('body', 'status'));
    expect(after.status).to.equal('signed');
    expect(after.body.equals(row.body)).to.equal(true);
    expect((await events({ patient_id: patientId, resource_id: row.id })).map((e: { action: string; outcome: string }) => `${e.action}:${e.outcome}`)).to.deep.equal(['create:allowed', 'sign:allowed', 'update:denied']);
  });

  it('an amendment keeps the original exactly as signed', async () => {
    const b = await signIn(built.app, p.slug, provider, clock);
    const page = await b.form(notesPath());
    const note = await inPractice((trx) => trx('clinical_notes').where({ patient_id: patientId, status: 'signed' }).first('id', 'body'));
    const empty = await b.agent.post(`/p/${p.slug}/notes/${note.id}/amend`).type('form').send({ _csrf: page.token, body: '   ' });
    expect(empty.status).to.equal(400);
    expect(empty.text).to.include('Write the text before saving it.');
    expect((await b.agent.post(`/p/${p.slug}/notes/${note.id}/amend`).type('form').send({ _csrf: page.token, body: 'Correction: tooth #15, not #14.' })).status).to.equal(303);
    const list = await b.agent.get(notesPath());
    expect(list.text).to.include('MOD composite #14; patient tolerated well.').and.include('Correction: tooth #15, not #14.');
    const still = await inPractice((trx) => trx('clinical_notes').where({ id: note.id }).first('body'));
    expect(still.body.equals(note.body)).to.equal(true);
    expect((await events({ action: 'amend', resource_id: note.id }))[0]).to.deep.include({ outcome: 'allowed', patient_id: patientId });
  });

  it('a draft is its author\u2019s: saved, changed, then signed; another provider cannot touch it', async () => {
    const b = await signIn(built.app, p.slug, provider, clock);
    const page = await b.form(notesPath());
    await b.agent.post(notesPath()).type('form').send({ _csrf: page.token, body: 'Draft: perio charting pending', action: 'draft' });
    const draft = await inPractice((trx) => trx('clinical_notes').where({ patient_id: patientId, status: 'draft' }).first('id'));
    const colleague = await buildStaff(t.current, { keyring: fx.keyring, now: clock.now }, p, { roles: ['provider'], locations: [p.locationIds[0]!] });
    const c = await signIn(built.app, p.slug, colleague, clock);
    const cp = await c.form(notesPath());
    expect((await c.agent.post(`/p/${p.slug}/notes/${draft.id}`).type('form').send({ _csrf: cp.token, body: 'hijacked', action: 'sign' })).status).to.equal(404);
    expect((await b.agent.post(`/p/${p.slug}/notes/${draft.id}`).type('form').send({ _csrf: page.token, body: 'Perio charting done: 4 mm pockets UR', action: 'sign' })).status).to.equal(303);
    const signed = await inPractice((trx) => trx('clinical_notes').where({ id: draft.id }).first('status', 'content_hash'));
    expect(signed).to.deep.equal({ status: 'signed', content_hash: createHash('sha256').update('Perio charting done: 4 mm pockets UR').digest('hex') });
  });

  it('front desk and billing cannot open notes; the denial is audited with the patient', async () => {
    for (const role of ['front_desk', 'billing']) {
      const u = await buildStaff(t.current, { keyring: fx.keyring, now: clock.now }, p, { roles: [role] });
      const s = await signIn(built.app, p.slug, u, clock);
      const res = await s.agent.get(notesPath());
      expect(res.status, role).to.equal(404);
      expect(res.text).to.not.include('composite');
      expect((await events({ action: 'permission_denied', actor_id: u.id }))[0], role).to.deep.include({ patient_id: patientId, details: { permission: 'clinical.read' } });
    }
  });

  it('a covering provider from another location is recorded with both locations', async () => {
    const [north, south] = p.locationIds as [string, string];
    const covering = await buildStaff(t.current, { keyring: fx.keyring, now: clock.now }, p, { roles: ['provider'], locations: [south] });
    const grant = randomUUID();
    await inPractice(async (trx) => {
      const sealed = await breakGlassSecrets.seal(new PracticeCrypto(fx.keyring, trx, p.id), grant, { justification: 'covering the North office today' });
      await trx('break_glass_grants').insert({ id: grant, practice_id: p.id, user_id: covering.id, patient_id: patientId, reason_code: 'continuity_of_care', granted_at: new Date(clock.now()), expires_at: new Date(clock.now() + 3_600_000), ...sealed });
    });
    const s = await signIn(built.app, p.slug, covering, clock);
    const page = await s.form(notesPath());
    expect((await s.agent.post(notesPath()).type('form').send({ _csrf: page.token, body: 'Seen while covering.', action: 'sign' })).status).to.equal(303);
    const note = await inPractice((trx) => trx('clinical_notes').where({ author_id: covering.id }).first('location_id', 'author_location_id', 'id'));
    expect(note).to.deep.include({ location_id: north, author_location_id: south });
    expect((await events({ action: 'create', resource_id: note.id }))[0]!.details).to.deep.equal({ location_id: north, covering_location_id: south });
    expect((await s.agent.get(notesPath())).text).to.include('covering from South');
  });
});
