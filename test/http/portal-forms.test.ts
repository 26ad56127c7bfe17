import { useStaffApp, type StaffApp } from '../support/staff-app.js';
import { expect } from 'chai';
import sharp from 'sharp';
import { browser } from '../support/browser.js';
import type { CryptoFixture } from '../support/crypto.js';
import { buildPatient, type BuiltPractice } from '../support/factories.js';
import { rememberPhi } from '../support/phi-scan.js';
import { buildStaff, signIn, type BuiltStaff, followCreated } from '../support/staff.js';

/** A small drawn signature, as the page's canvas would send it. */
async function drawing(): Promise<string> {
  const svg = Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="600" height="200"><path d="M20 150 C 120 20, 220 180, 580 60" stroke="black" stroke-width="4" fill="none"/></svg>');
  return `data:image/png;base64,${(await sharp(svg).png().toBuffer()).toString('base64')}`;
}

async function photo(): Promise<Buffer> {
  return sharp({ create: { width: 800, height: 500, channels: 3, background: { r: 200, g: 210, b: 230 } } }).jpeg().toBuffer();
}

describe('patient links: intake and consent forms, patient uploads', () => {
  const { t, clock, inPractice } = useStaffApp({ slug: 'portal-forms' }, (s) => ({ fx, p, built } = s));
  let fx: CryptoFixture;
  let p: BuiltPractice;
  let coordinator: BuiltStaff;
  let owner: BuiltStaff;
  let built: StaffApp['built'];
  const templateId = async (key: string): Promise<string> => (await inPractice((trx) => trx('form_templates').where({ key }).first('id'))).id;

  /** A link for forms and uploads, opened with the right date of birth; returns the patient's client. */
  async function openLink(patientId: string, forms: string[], tasks = ['intake_forms', 'uploads']) {
    const b = await signIn(built.app, p.slug, coordinator, clock);
    const page = await b.form(`/p/${p.slug}/patients/${patientId}/links`);
    const res = await followCreated(b, await b.agent.post(`/p/${p.slug}/patients/${patientId}/links`).type('form').send(`_csrf=${encodeURIComponent(page.token)}&${tasks.map((x) => `tasks=${x}`).join('&')}&${forms.map((f) => `forms=${f}`).join('&')}&send=none`));
    expect(res.status, res.text.slice(0, 300)).to.equal(200);
    const path = new URL(/(http[^<\s]+\/l\/[A-Za-z0-9_-]{43})/.exec(res.text)![1]!).pathname;
    const g = browser(built.app);
    const dob = await g.form(path);
    expect((await g.agent.post(path).type('form').send({ _csrf: dob.token, dob: '1970-02-03' })).status).to.equal(303);
    return g;
  }

  before(async () => {
    rememberPhi('Penicillin and latex', 'Jordan Applewhite');
    coordinator = await buildStaff(t.current, { keyring: fx.keyring, now: clock.now }, p, { roles: ['treatment_coordinator'] });
    owner = await buildStaff(t.current, { keyring: fx.keyring, now: clock.now }, p, { owner: true });
  });

  it('every practice starts with the four default forms', async () => {
    const keys = await inPractice((trx) => trx('form_templates').orderBy('key').pluck('key'));
    expect(keys).to.deep.equal(['consent_to_treat', 'financial_policy', 'hipaa_acknowledgment', 'medical_history']);
  });

  it('the patient fills and signs a form: checked against its fields, encrypted, bound to the version, hashed; staff read (audited), print and review it', async () => {
    const patient = await buildPatient(t.current.db, fx.keyring, p, { dateOfBirth: '1970-02-03' });
    const history = await templateId('medical_history');
    const hipaa = await templateId('hipaa_acknowledgment');
    const g = await openLink(patient.id, [history, hipaa]);
    const home = await g.agent.get('/portal');
    expect(home.text).to.include('Medical history').and.include('Acknowledgment of the Notice of Privacy Practices').and.include('/portal/uploads');

    const form = await g.form(`/portal/forms/${history}`);
    const versionId = /name="versionId" value="([^"]+)"/.exec(form.text)![1]!;
    const bad = await g.agent.post(`/portal/forms/${history}`).type('form').send({ _csrf: form.token, versionId, f_allergies: 'Penicillin and latex', f_heart_condition: 'maybe', fullName: 'Jordan Applewhite', signature: 'Jordan Applewhite' });
    expect(bad.status).to.equal(400);
    expect(bad.text).to.include('Choose yes or no.').and.include('This is required.').and.include('Penicillin and latex');
    const unsigned = await g.agent.post(`/portal/forms/${history}`).type('form').send({ _csrf: form.token, versionId, f_heart_condition: 'no', f_blood_thinners: 'no', f_diabetes: 'no', fullName: 'Jordan Applewhite' });
    expect(unsigned.status).to.equal(400);
    expect(unsigned.text).to.include('Sign by drawing in the box or by typing your signature.');
    const junk = await g.agent.post(`/portal/forms/${history}`).type('form').send({ _csrf: form.token, versionId, f_heart_condition: 'no', f_blood_thinners: 'no', f_diabetes: 'no', fullName: 'Jordan Applewhite', drawing: 'data:image/png;base64,bm90IGEgcG5n' });
    expect(junk.status).to.equal(400);
    expect(junk.text).to.include('The drawn signature could not be read.');
    expect(await inPractice((trx) => trx('form_submissions'))).to.have.length(0);

    const ok = await g.agent
      .post(`/portal/forms/${history}`)
      .set('User-Agent', 'TestPhone/2.0')
      .type('form')
      .send({ _csrf: form.token, versionId, f_allergies: 'Penicillin and latex', f_heart_condition: 'no', f_blood_thinners: 'no', f_diabetes: 'yes', f_last_visit: '06/01/2025', f_pregnant: 'Not applicable', fullName: 'Jordan Applewhite', drawing: await drawing() });
    expect(ok.status).to.equal(303);
    const rows = await inPractice((trx) => trx('form_submissions').select('*'));
    expect(rows).to.have.length(1);
    const row = rows[0];
    expect(row.content.toString('latin1')).to.not.include('Penicillin').and.not.include('Applewhite');
    expect(row.content_hash).to.match(/^[0-9a-f]{64}$/);
    expect(row.user_agent).to.equal('TestPhone/2.0');
    const v1 = await inPractice((trx) => trx('form_template_versions').where({ template_id: history, version: 1 }).first('id'));
    expect(row.template_version_id).to.equal(v1.id);
    expect((await g.agent.get('/portal')).text).to.include('done, thank you');
    expect((await g.agent.get(`/portal/forms/${history}`)).status, 'a done form is not offered again').to.equal(303);
    await g.agent.post(`/portal/forms/${history}`).type('form').send({ _csrf: form.token, versionId, f_heart_condition: 'no', f_blood_thinners: 'no', f_diabetes: 'no', fullName: 'X Y', signature: 'X Y' });
    expect(await inPractice((trx) => trx('form_submissions'))).to.have.length(1);
    expect(await t.current.owner('audit_events').where({ practice_id: p.id, action: 'submit', actor_type: 'patient_link', patient_id: patient.id })).to.have.length(1);

    // The owner edits the template: version 2. The submission still reads against version 1.
    const b = await signIn(built.app, p.slug, owner, clock);
    const edit = await b.form(`/p/${p.slug}/forms/${history}`);
    const badLines = await b.agent.post(`/p/${p.slug}/forms/${history}`).type('form').send({ _csrf: edit.token, title: 'Health history', notice: 'Tell us.', fields: 'Allergies | long text | optional\nSmoker | sometimes | required' });
    expect(badLines.status).to.equal(400);
    expect(badLines.text).to.include('Line 2: “sometimes” is not a field type.');
    const saved = await b.agent.post(`/p/${p.slug}/forms/${history}`).type('form').send({ _csrf: edit.token, title: 'Health history', notice: 'Tell us.', fields: 'Allergies | long text | optional\nDo you smoke? | yes/no | required' });
    expect(saved.status).to.equal(303);
    expect(await inPractice((trx) => trx('form_template_versions').where({ template_id: history }).pluck('version'))).to.have.members([1, 2]);

    const list = await b.agent.get(`/p/${p.slug}/patients/${patient.id}/forms`);
    expect(list.status).to.equal(200);
    expect(list.text).to.include('Medical history').and.include('to review');
    const view = await b.form(`/p/${p.slug}/form-submissions/${row.id}`);
    expect(view.text).to.include('Penicillin and latex').and.include('Jordan Applewhite').and.include('Do you have diabetes?').and.include('data:image/png;base64,').and.not.include('Do you smoke?');
    expect((await b.agent.get(`/p/${p.slug}/form-submissions/${row.id}?print=1`)).text).to.include('printed');
    expect((await b.agent.post(`/p/${p.slug}/form-submissions/${row.id}/review`).type('form').send({ _csrf: view.token })).status).to.equal(303);
    expect((await inPractice((trx) => trx('form_submissions').where({ id: row.id }).first('reviewed_by'))).reviewed_by).to.equal(owner.id);
    const staffEvents = await t.current.owner('audit_events').where({ practice_id: p.id, resource_type: 'form_submission', actor_type: 'user' }).orderBy('id').pluck('action');
    expect(staffEvents).to.deep.equal(['list', 'view', 'print', 'review']);

    // Billing (no forms.review) gets the not-found page, and the refusal is audited.
    const billing = await buildStaff(t.current, { keyring: fx.keyring, now: clock.now }, p, { roles: ['billing'] });
    const d = await signIn(built.app, p.slug, billing, clock);
    expect((await d.agent.get(`/p/${p.slug}/form-submissions/${row.id}`)).status).to.equal(404);
    expect(await t.current.owner('audit_events').where({ practice_id: p.id, actor_id: billing.id, action: 'permission_denied' })).to.have.length(1);
  });

  it('a forms link reaches only the forms it names; the template editor needs settings.manage', async () => {
    const patient = await buildPatient(t.current.db, fx.keyring, p, { dateOfBirth: '1970-02-03' });
    const g = await openLink(patient.id, [await templateId('consent_to_treat')], ['intake_forms']);
    expect((await g.agent.get(`/portal/forms/${await templateId('financial_policy')}`)).status).to.equal(404);
    expect((await g.agent.get('/portal/forms/not-a-uuid')).status).to.equal(404);
    expect((await g.agent.get('/portal/uploads')).status).to.equal(404);
    const b = await signIn(built.app, p.slug, coordinator, clock);
    expect((await b.agent.get(`/p/${p.slug}/forms`)).status).to.equal(404);
    const page = await b.form(`/p/${p.slug}/patients/${patient.id}/links`);
    const noForms = await b.agent.post(`/p/${p.slug}/patients/${patient.id}/links`).type('form').send({ _csrf: page.token, tasks: 'intake_forms' });
    expect(noForms.status).to.equal(400);
    expect(noForms.text).to.include('Choose one or more of the practice’s current forms.');
  });

  it('the patient uploads an insurance card through the same pipeline; staff see it on the chart; non-images are refused', async () => {
    const patient = await buildPatient(t.current.db, fx.keyring, p, { dateOfBirth: '1970-02-03' });
    const g = await openLink(patient.id, [], ['uploads']);
    const page = await g.form('/portal/uploads');
    const pdf = await g.agent.post('/portal/uploads').field('_csrf', page.token).field('slot', 'card_front').attach('file', Buffer.from('%PDF-1.4\n%\u00e2\u00e3\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF'), 'card.pdf');
    expect(pdf.status).to.equal(415);
    const badSlot = await g.agent.post('/portal/uploads').field('_csrf', page.token).field('slot', 'xray').attach('file', await photo(), 'card.jpg');
    expect(badSlot.status).to.equal(400);
    const noToken = await g.agent.post('/portal/uploads').field('slot', 'card_front').attach('file', await photo(), 'card.jpg');
    expect(noToken.status).to.equal(403);
    const ok = await g.agent.post('/portal/uploads').field('_csrf', page.token).field('slot', 'card_front').attach('file', await photo(), 'Jordan Applewhite card.jpg');
    expect(ok.status).to.equal(303);
    const docs = await inPractice((trx) => trx('patient_documents').where({ patient_id: patient.id }).select('kind', 'uploaded_by', 'uploaded_via_link', 'content_type'));
    expect(docs).to.have.length(1);
    expect(docs[0]).to.include({ kind: 'insurance_card', uploaded_by: null, content_type: 'image/jpeg' });
    expect(docs[0].uploaded_via_link).to.be.a('string');
    expect((await g.agent.get('/portal/uploads')).text).to.include('Insurance card (front)');
    expect(await t.current.owner('audit_events').where({ practice_id: p.id, action: 'upload', actor_type: 'patient_link', patient_id: patient.id })).to.have.length(1);
    const b = await signIn(built.app, p.slug, owner, clock);
    expect((await b.agent.get(`/p/${p.slug}/patients/${patient.id}/documents`)).text).to.include('the patient, through a link').and.include('Insurance card (front)');
  });
});
