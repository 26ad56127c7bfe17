import { expect } from 'chai';
import supertest from 'supertest';
import type { CryptoFixture } from '../support/crypto.js';
import { buildPatient, type BuiltPractice } from '../support/factories.js';
import { useStaffApp, type StaffApp } from '../support/staff-app.js';
import { buildStaff, signIn, type BuiltStaff } from '../support/staff.js';

/** The registry and incident pages (issue 19): who may use them, bad input beside its field, the sub-processor lists, the HHS log. */
describe('business associate and incident pages', () => {
  const { t, clock, inPractice } = useStaffApp({ slug: 'incidents-http', name: 'Molar Manor', env: { SUBPROCESSORS_PATH: '/subprocessors' } }, (s) => ({ fx, p, built } = s));
  let fx: CryptoFixture;
  let p: BuiltPractice;
  let built: StaffApp['built'];
  let manager: BuiltStaff;
  let desk: BuiltStaff;

  before(async () => {
    manager = await buildStaff(t.current, { keyring: fx.keyring, now: clock.now }, p, { roles: ['office_manager'] });
    desk = await buildStaff(t.current, { keyring: fx.keyring, now: clock.now }, p, { roles: ['front_desk'] });
  });

  it('the office manager adds a vendor; bad dates are a 400 beside the field and save nothing; the change is dated on the sub-processor list every staff member sees', async () => {
    const b = await signIn(built.app, p.slug, manager, clock);
    const page = await b.form(`/p/${p.slug}/vendors`);
    expect(page.status).to.equal(200);
    const bad = await b.agent.post(`/p/${p.slug}/vendors`).type('form').send({ _csrf: page.token, name: 'Lab', service: 'Crowns', dataSeen: 'phi', agreement: 'executed', signedOn: '2026-02-30', listed: 'yes' });
    expect(bad.status).to.equal(400);
    expect(bad.text).to.include('Enter the day as YYYY-MM-DD.').and.include('aria-invalid="true"');
    const unsigned = await b.agent.post(`/p/${p.slug}/vendors`).type('form').send({ _csrf: page.token, name: 'Lab', service: 'Crowns', dataSeen: 'phi', agreement: 'executed', listed: 'yes' });
    expect(unsigned.status).to.equal(400);
    expect(unsigned.text).to.include('Enter the day the agreement was signed.');
    expect(await inPractice((trx) => trx('vendors').count<{ n: string }[]>({ n: '*' }))).to.deep.equal([{ n: '0' }]);
    const ok = await b.agent.post(`/p/${p.slug}/vendors`).type('form').send({ _csrf: page.token, name: 'Precision Crown Lab', service: 'Crowns and bridges', dataSeen: 'phi', agreement: 'requested', listed: 'yes' });
    expect(ok.status).to.equal(303);
    const registry = await b.agent.get(`/p/${p.slug}/vendors`);
    expect(registry.text).to.include('Precision Crown Lab').and.include('coverage-missing');
    // The signed agreement: a text file is refused beside the field; a PDF is stored encrypted and downloads as it was, audited.
    const vendorId = (await inPractice((trx) => trx('vendors').first<{ id: string }>('id'))).id;
    const edit = await b.form(`/p/${p.slug}/vendors/${vendorId}`);
    const wrong = await b.agent.post(`/p/${p.slug}/vendors/${vendorId}/document`).field('_csrf', edit.token).attach('file', Buffer.from('just some words'), 'baa.txt');
    expect(wrong.status).to.equal(415);
    expect(wrong.text).to.include('This kind of file is not accepted').and.include('aria-invalid="true"');
    const pdf = Buffer.from('%PDF-1.7\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n');
    const stored = await b.agent.post(`/p/${p.slug}/vendors/${vendorId}/document`).field('_csrf', edit.token).attach('file', pdf, 'baa.pdf');
    expect(stored.status).to.equal(303);
    const raw = await inPractice((trx) => trx('vendors').where({ id: vendorId }).first<{ document_file_id: string; document_type: string }>('document_file_id', 'document_type'));
    expect(raw.document_type).to.equal('application/pdf');
    const got = await b.agent.get(`/p/${p.slug}/vendors/${vendorId}/document`).buffer(true).parse((r, cb) => { const c: Buffer[] = []; r.on('data', (x: Buffer) => c.push(x)); r.on('end', () => cb(null, Buffer.concat(c))); });
    expect(got.status).to.equal(200);
    expect(Buffer.compare(got.body as Buffer, pdf)).to.equal(0);
    expect(await inPractice((trx) => trx('audit_events').where({ action: 'download', resource_type: 'vendor', resource_id: vendorId }).count<{ n: string }[]>({ n: '*' }))).to.deep.equal([{ n: '1' }]);
    const d = await signIn(built.app, p.slug, desk, clock);
    expect((await d.agent.get(`/p/${p.slug}/vendors`)).status, 'the front desk does not keep the registry').to.equal(404);
    const list = await d.agent.get(`/p/${p.slug}/subprocessors`);
    expect(list.status).to.equal(200);
    expect(list.text).to.include('Precision Crown Lab').and.include('added');
    // The public list (SUBPROCESSORS_PATH) shows the installation's only, to anyone.
    const pub = await supertest(built.app).get('/subprocessors');
    expect(pub.status).to.equal(200);
    expect(pub.text).to.include('Sub-processors').and.not.include('Precision Crown Lab');
  });

  it('an incident: a bad form is a 400 with every error and creates nothing; the HHS log downloads as CSV; the front desk cannot open the register', async () => {
    const b = await signIn(built.app, p.slug, manager, clock);
    const page = await b.form(`/p/${p.slug}/incidents`);
    const bad = await b.agent.post(`/p/${p.slug}/incidents`).type('form').send({ _csrf: page.token, kind: 'aliens', discoveredOn: 'yesterday', summary: '' });
    expect(bad.status).to.equal(400);
    expect(bad.text).to.include('Choose the kind of incident.').and.include('Enter the day it was discovered (YYYY-MM-DD).').and.include('Describe what happened');
    const future = await b.agent.post(`/p/${p.slug}/incidents`).type('form').send({ _csrf: page.token, kind: 'lost_device', discoveredOn: '2099-01-01', summary: 'A laptop was lost' });
    expect(future.status).to.equal(400);
    expect(future.text).to.include('cannot be in the future');
    expect(await inPractice((trx) => trx('incidents').count<{ n: string }[]>({ n: '*' }))).to.deep.equal([{ n: '0' }]);
    const ok = await b.agent.post(`/p/${p.slug}/incidents`).type('form').send({ _csrf: page.token, kind: 'lost_device', discoveredOn: new Date(clock.now()).toISOString().slice(0, 10), systems: ['device', 'records'], summary: 'A laptop was lost on the bus' });
    expect(ok.status).to.equal(303);
    const shown = await b.agent.get(ok.headers.location!);
    expect(shown.text).to.include('A laptop was lost on the bus').and.include('Record the assessment');
    const id = /incidents\/([0-9a-f-]{36})/.exec(ok.headers.location!)![1]!;
    const token = (await b.form(`/p/${p.slug}/incidents/${id}`)).token;
    const noOutcome = await b.agent.post(`/p/${p.slug}/incidents/${id}/assessment`).type('form').send({ _csrf: token, nature: 'x' });
    expect(noOutcome.status).to.equal(400);
    expect(noOutcome.text).to.include('Choose the outcome of the assessment.');
    const closeEarly = await b.agent.post(`/p/${p.slug}/incidents/${id}/close`).type('form').send({ _csrf: token });
    expect(closeEarly.status).to.equal(409);
    expect(closeEarly.text).to.include('Record the risk assessment before closing');
    // One patient by search (a lost paper chart): added, listed by name (an audited read), removed again.
    const patient = await buildPatient(t.current.db, fx.keyring, p, { familyName: 'Paperchart' });
    const found = await b.agent.post(`/p/${p.slug}/incidents/${id}/patients/find`).type('form').send({ _csrf: token, q: 'Paperchart' });
    expect(found.status).to.equal(200);
    expect(found.text).to.include('Paperchart, Pat').and.include('Add to the incident');
    const pageToken = token;
    expect((await b.agent.post(`/p/${p.slug}/incidents/${id}/patients/change`).type('form').send({ _csrf: pageToken, patientId: patient.id, change: 'add' })).status).to.equal(303);
    expect(await inPractice((trx) => trx('incident_patients').where({ incident_id: id }).pluck('patient_id'))).to.deep.equal([patient.id]);
    expect((await b.agent.get(`/p/${p.slug}/incidents/${id}`)).text).to.include('Affected patients: 1');
    const listed = await b.agent.get(`/p/${p.slug}/incidents/${id}/patients`);
    expect(listed.text).to.include('Paperchart, Pat').and.include('Remove (added by mistake)');
    expect(await inPractice((trx) => trx('audit_events').where({ action: 'list', resource_type: 'incident', patient_id: patient.id }).count<{ n: string }[]>({ n: '*' }))).to.not.deep.equal([{ n: '0' }]);
    await b.agent.post(`/p/${p.slug}/incidents/${id}/patients/change`).type('form').send({ _csrf: pageToken, patientId: patient.id, change: 'remove' });
    expect(await inPractice((trx) => trx('incident_patients').where({ incident_id: id }).count<{ n: string }[]>({ n: '*' }))).to.deep.equal([{ n: '0' }]);
    const removeAgain = await b.agent.post(`/p/${p.slug}/incidents/${id}/patients/change`).type('form').send({ _csrf: pageToken, patientId: patient.id, change: 'remove' });
    expect(removeAgain.headers.location).to.include('error=1');
    const csv = await b.agent.get(`/p/${p.slug}/incidents-log.csv?year=2026`);
    expect(csv.headers['content-type']).to.match(/^text\/csv/);
    expect(csv.text.split('\r\n')[0]).to.include('Date of discovery');
    const d = await signIn(built.app, p.slug, desk, clock);
    expect((await d.agent.get(`/p/${p.slug}/incidents`)).status).to.equal(404);
  });
});
