import { useStaffApp, type StaffApp } from '../support/staff-app.js';
import { expect } from 'chai';
import type { CryptoFixture } from '../support/crypto.js';
import { buildPatient, type BuiltPractice } from '../support/factories.js';
import { buildStaff, signIn, type BuiltStaff } from '../support/staff.js';

/** The patient-rights pages (issue 18, first part): who may use them, the forms' errors, the accounting print and CSV. */
describe('patient rights pages', () => {
  const { t, clock } = useStaffApp({ slug: 'rights-http', name: 'Incisor Inn' }, (s) => ({ fx, p, built } = s));
  let fx: CryptoFixture;
  let p: BuiltPractice;
  let built: StaffApp['built'];
  let manager: BuiltStaff;
  let desk: BuiltStaff;
  let patientId: string;
  const inPractice = <T>(fn: Parameters<typeof t.current.db.withPractice<T>>[2]) => t.current.db.withPractice(p.id, { kind: 'system', id: 'test' }, fn);

  before(async () => {
    manager = await buildStaff(t.current, { keyring: fx.keyring, now: clock.now }, p, { roles: ['office_manager'] });
    desk = await buildStaff(t.current, { keyring: fx.keyring, now: clock.now }, p, { roles: ['front_desk'] });
    patientId = (await buildPatient(t.current.db, fx.keyring, p, { familyName: 'Requestor' })).id;
  });

  it('the office manager records a request and a disclosure; bad input is a 400 beside its field and saves nothing', async () => {
    const b = await signIn(built.app, p.slug, manager, clock);
    const chart = await b.agent.get(`/p/${p.slug}/patients/${patientId}`);
    expect(chart.text).to.include(`/p/${p.slug}/patients/${patientId}/rights`);
    const page = await b.form(`/p/${p.slug}/patients/${patientId}/rights`);
    expect(page.status).to.equal(200);
    const bad = await b.agent.post(`/p/${p.slug}/patients/${patientId}/requests`).type('form').send({ _csrf: page.token, kind: 'telepathy', receivedVia: 'phone', receivedAt: '2026-02-30' });
    expect(bad.status).to.equal(400);
    expect(bad.text).to.include('Choose what the patient asked for.').and.include('Enter the day the request was received.').and.include('aria-invalid="true"');
    expect(await inPractice((trx) => trx('patient_requests').count<{ n: string }[]>({ n: '*' }))).to.deep.equal([{ n: '0' }]);
    const ok = await b.agent.post(`/p/${p.slug}/patients/${patientId}/requests`).type('form').send({ _csrf: page.token, kind: 'access', receivedVia: 'phone', receivedAt: new Date(clock.now()).toISOString().slice(0, 10), details: 'A copy of everything' });
    expect(ok.status).to.equal(303);
    const requestId = (await inPractice((trx) => trx('patient_requests').first<{ id: string }>('id')))!.id;
    const noReason = await b.agent.post(`/p/${p.slug}/patient-requests/${requestId}/extend`).type('form').send({ _csrf: page.token, reason: '', noticeAt: '2026-13-01' });
    expect(noReason.status).to.equal(400);
    expect(noReason.text).to.include('Write the reason for the delay').and.include('Rights &amp; disclosures');
    expect((await inPractice((trx) => trx('patient_requests').where({ id: requestId }).first('extended_at'))).extended_at).to.equal(null);
    const answered = await b.agent.post(`/p/${p.slug}/patient-requests/${requestId}/close`).type('form').send({ _csrf: page.token, status: 'fulfilled', note: 'Copy handed over', fee: '0.00' });
    expect(answered.status).to.equal(303);
    expect(await inPractice((trx) => trx('patient_requests').where({ id: requestId }).first('status', 'fee_cents'))).to.deep.equal({ status: 'fulfilled', fee_cents: 0 });
    // A request received 58 days ago for an accounting (due in 60): due within a week, on the home page.
    await b.agent.post(`/p/${p.slug}/patients/${patientId}/requests`).type('form').send({ _csrf: page.token, kind: 'accounting', receivedVia: 'paper', receivedAt: new Date(clock.now() - 58 * 86_400_000).toISOString().slice(0, 10) });
    expect((await b.agent.get(`/p/${p.slug}/home`)).text).to.include('one is due within a week.');
    const register = await b.agent.get(`/p/${p.slug}/requests`);
    expect(register.text).to.include('Requestor').and.include('Access to their records').and.include('Recently answered');
    const disclosed = await b.agent.post(`/p/${p.slug}/patients/${patientId}/disclosures`).type('form').send({ _csrf: page.token, disclosedAt: new Date(clock.now()).toISOString().slice(0, 10), purpose: 'court_order', recipientName: '=HYPERLINK("http://evil.example")', recipientAddress: '', description: 'Chart copy' });
    expect(disclosed.status).to.equal(303);
    const accounting = await b.agent.get(`/p/${p.slug}/patients/${patientId}/accounting`);
    expect(accounting.text).to.include('Court order or subpoena').and.include('Chart copy');
    const csv = await b.agent.get(`/p/${p.slug}/patients/${patientId}/accounting?format=csv`);
    expect(csv.headers['content-type']).to.match(/^text\/csv/);
    expect(csv.text).to.include(`"'=HYPERLINK(""http://evil.example"")"`);
    expect(csv.headers['content-disposition']).to.not.include('Requestor');
  });

  it('an agreed confidential-communication rule shows as a banner on the chart, for everyone who opens it', async () => {
    const b = await signIn(built.app, p.slug, manager, clock);
    const page = await b.form(`/p/${p.slug}/patients/${patientId}/rights`);
    const missing = await b.agent.post(`/p/${p.slug}/patients/${patientId}/restrictions`).type('form').send({ _csrf: page.token, kind: 'confidential_communication', decision: 'agreed', channel: '', description: 'Email only' });
    expect(missing.status).to.equal(400);
    expect(missing.text).to.include('Choose how the patient wants to be contacted.');
    const ok = await b.agent.post(`/p/${p.slug}/patients/${patientId}/restrictions`).type('form').send({ _csrf: page.token, kind: 'confidential_communication', decision: 'agreed', channel: 'no_text', description: 'No texts: shared phone' });
    expect(ok.status).to.equal(303);
    const d = await signIn(built.app, p.slug, desk, clock);
    const chart = await d.agent.get(`/p/${p.slug}/patients/${patientId}`);
    expect(chart.text).to.include('The practice agreed:').and.include('confidential communications — no text messages');
    expect(chart.text, 'what was asked is for rights.manage').to.not.include('shared phone');
  });

  it('the front desk reaches none of it', async () => {
    const b = await signIn(built.app, p.slug, desk, clock);
    expect((await b.agent.get(`/p/${p.slug}/requests`)).status).to.equal(404);
    expect((await b.agent.get(`/p/${p.slug}/patients/${patientId}/rights`)).status).to.equal(404);
    expect((await b.agent.get(`/p/${p.slug}/patients/${patientId}/accounting`)).status).to.equal(404);
    expect((await b.agent.get(`/p/${p.slug}/patients/${patientId}`)).text).to.not.include(`/patients/${patientId}/rights`);
  });
});
