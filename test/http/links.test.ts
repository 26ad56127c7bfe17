import { useStaffApp, type StaffApp } from '../support/staff-app.js';
import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import { PracticeCrypto } from '../../src/crypto/encrypted-columns.js';
import { planItemSecrets, planSecrets } from '../../src/queries/plans.queries.js';
import { browser } from '../support/browser.js';
import type { CryptoFixture } from '../support/crypto.js';
import { buildPatient, type BuiltPractice } from '../support/factories.js';
import { rememberPhi } from '../support/phi-scan.js';
import { buildStaff, signIn, type BuiltStaff, followCreated } from '../support/staff.js';

describe('patient links: opaque code, date of birth, lockout, one purpose', () => {
  const { t, clock, inPractice } = useStaffApp({ slug: 'links-http' }, (s) => ({ fx, p, built } = s));
  let fx: CryptoFixture;
  let p: BuiltPractice;
  let coordinator: BuiltStaff;
  let built: StaffApp['built'];

  /** A patient with a plan in the given status. */
  async function patientWithPlan(status: 'draft' | 'presented'): Promise<{ patientId: string; planId: string }> {
    const patient = await buildPatient(t.current.db, fx.keyring, p, { dateOfBirth: '1970-02-03' });
    const planId = randomUUID();
    await inPractice(async (trx) => {
      const pc = new PracticeCrypto(fx.keyring, trx, p.id);
      await trx('treatment_plans').insert({ id: planId, practice_id: p.id, patient_id: patient.id, status, presented_at: status === 'presented' ? new Date(clock.now()) : null, created_by: coordinator.id, ...(await planSecrets.seal(pc, planId, { title: 'Crown plan' })) });
      const itemId = randomUUID();
      await trx('treatment_plan_items').insert({ id: itemId, practice_id: p.id, plan_id: planId, phase: 1, ...(await planItemSecrets.seal(pc, itemId, { content: { cdt: 'D2740', tooth: '3', surfaces: null, description: 'Crown, porcelain', fee: 120000, insurance: 60000 } })) });
    });
    return { patientId: patient.id, planId };
  }

  async function makeLink(patientId: string, planId: string): Promise<{ path: string; code: string; res: { status: number; text: string }; b: Awaited<ReturnType<typeof signIn>> }> {
    const b = await signIn(built.app, p.slug, coordinator, clock);
    const page = await b.form(`/p/${p.slug}/patients`); // a form page of this session (the links page has none without a presented plan)
    const res = await followCreated(b, await b.agent.post(`/p/${p.slug}/patients/${patientId}/links`).type('form').send({ _csrf: page.token, tasks: 'plan_review', planId }));
    const url = /(http[^<\s]+\/l\/[A-Za-z0-9_-]{43})/.exec(res.text)?.[1];
    const path = url ? new URL(url).pathname : '';
    return { path, code: path.split('/').pop() ?? '', res, b };
  }

  /** The content hash the plan page carries in its decision form. */
  const shownHash = (html: string): string => /name="planHash" value="([0-9a-f]{64})"/.exec(html)![1]!;

  async function tryDob(path: string, dob: string) {
    const g = browser(built.app);
    // A form page that always exists (an unknown code looks like any other), for the session's CSRF token.
    const form = await g.form(`/l/${'B'.repeat(43)}`);
    return { g, res: await g.agent.post(path).type('form').send({ _csrf: form.token, dob }) };
  }

  before(async () => {
    rememberPhi('Crown, porcelain', 'Crown plan');
    coordinator = await buildStaff(t.current, { keyring: fx.keyring, now: clock.now }, p, { roles: ['treatment_coordinator'] });
  });

  it('shows the code once; the database keeps only its hash; the code is in no log or audit row', async () => {
    const { patientId, planId } = await patientWithPlan('presented');
    const { res, code, b } = await makeLink(patientId, planId);
    expect(res.status).to.equal(200);
    expect(code).to.have.length(43);
    const stored = await inPractice((trx) => trx('patient_links').select('*'));
    expect(JSON.stringify(stored)).to.not.include(code);
    const audits = await t.current.owner('audit_events').where({ practice_id: p.id }).select('*');
    expect(JSON.stringify(audits)).to.not.include(code);
    await browser(built.app).agent.get(`/l/${code}`);
    expect(JSON.stringify(built.logs)).to.not.include(code);
    // Post/redirect/get: the link is on the page the POST redirects to, once, with a QR code and a
    // copy button; reloading that page shows no code and creates nothing.
    expect(res.text).to.include('<svg').and.include('data-copy="#created-link"');
    const links = () => inPractice((trx) => trx('patient_links').where({ patient_id: patientId }).count<{ n: string }[]>({ n: '*' })).then((r) => Number(r[0]!.n));
    expect(await links()).to.equal(1);
    const reload = await b.agent.get(`/p/${p.slug}/patients/${patientId}/links`);
    expect(reload.status).to.equal(200);
    expect(reload.text).to.not.match(/\/l\/[A-Za-z0-9_-]{43}/).and.not.include('<svg');
    expect(await links()).to.equal(1);
    const sessions = await t.current.owner('http_sessions').select('sess');
    expect(JSON.stringify(sessions), 'the code waits sealed, not in clear').to.not.include(code);
    const draft = await patientWithPlan('draft');
    expect((await makeLink(draft.patientId, draft.planId)).res.status, 'a draft plan cannot be sent').to.equal(400);
  });

  it('the right date of birth opens this link\u2019s plan only; the patient session reaches nothing else', async () => {
    const { patientId, planId } = await patientWithPlan('presented');
    const { path } = await makeLink(patientId, planId);
    const { g, res } = await tryDob(path, '02/03/1970');
    expect(res.status).to.equal(303);
    expect(res.headers.location).to.equal('/portal');
    const home = await g.agent.get('/portal');
    expect(home.status).to.equal(200);
    expect(home.text).to.include('Review your treatment plan').and.not.include('/portal/uploads');
    const portal = await g.agent.get('/portal/plan');
    expect(portal.status).to.equal(200);
    expect(portal.text).to.include('Crown, porcelain').and.include('$600.00');
    expect(portal.headers['referrer-policy']).to.equal('no-referrer');
    expect(portal.headers['cache-control']).to.include('no-store');
    for (const url of [`/p/${p.slug}/home`, `/p/${p.slug}/patients/${patientId}`, '/operator']) expect((await g.agent.get(url)).status, url).to.equal(303);
    // Another task of the same patient is out of reach too: this link is for the plan only.
    const someForm = (await inPractice((trx) => trx('form_templates').first('id'))).id;
    for (const url of ['/portal/uploads', `/portal/forms/${someForm}`]) expect((await g.agent.get(url)).status, url).to.equal(404);
    const upload = await g.agent.post('/portal/uploads').field('_csrf', (await g.form('/portal')).token).field('slot', 'photo').attach('file', Buffer.from('not really'), 'x.png');
    expect(upload.status).to.equal(404);
    const denied = await t.current.owner('audit_events').where({ practice_id: p.id, actor_type: 'patient_link', action: 'permission_denied', patient_id: patientId });
    expect(denied).to.have.length(3);
    const events = await t.current.owner('audit_events').where({ practice_id: p.id, actor_type: 'patient_link', patient_id: patientId }).pluck('action');
    expect(events).to.include.members(['link_open', 'view']);
  });

  it('the patient accepts with a typed name and signature: the record keeps the plan hash, time, IP and user agent; the plan then cannot change', async () => {
    rememberPhi('Morgan Quillfeather');
    const { patientId, planId } = await patientWithPlan('presented');
    const { path } = await makeLink(patientId, planId);
    const { g } = await tryDob(path, '1970-02-03');
    const page = await g.form('/portal/plan');
    const planHash = shownHash(page.text);
    const missing = await g.agent.post('/portal/decision').type('form').send({ _csrf: page.token, planHash, decision: 'accepted', fullName: '', signature: 'x' });
    expect(missing.status).to.equal(400);
    expect(missing.text).to.include('Type your full name.');
    const ok = await g.agent.post('/portal/decision').set('User-Agent', 'TestPhone/1.0').type('form').send({ _csrf: page.token, planHash, decision: 'accepted', fullName: 'Morgan Quillfeather', signature: 'Morgan Quillfeather' });
    expect(ok.status).to.equal(303);
    const plan = await inPractice((trx) => trx('treatment_plans').where({ id: planId }).first('status', 'accepted_hash', 'decided_by'));
    const decision = await inPractice((trx) => trx('plan_decisions').where({ plan_id: planId }).first('decision', 'plan_hash', 'signer', 'user_agent', 'client_ip', 'decided_at'));
    expect(plan.status).to.equal('accepted');
    expect(plan.decided_by).to.match(/^patient_link:/);
    expect(decision).to.deep.include({ decision: 'accepted', plan_hash: plan.accepted_hash, user_agent: 'TestPhone/1.0' });
    expect(decision.client_ip).to.be.a('string');
    expect(decision.signer.toString('latin1')).to.not.include('Quillfeather');
    let refused = '';
    await inPractice((trx) => trx('treatment_plan_items').where({ plan_id: planId }).delete()).catch((e: Error) => (refused = e.message));
    expect(refused).to.include('cannot be changed');
    const again = await g.agent.post('/portal/decision').type('form').send({ _csrf: page.token, planHash, decision: 'declined', fullName: 'Morgan Quillfeather', signature: 'M Q' });
    expect(again.status).to.equal(409);
    expect((await inPractice((trx) => trx('plan_decisions').where({ plan_id: planId }).first('plan_hash'))).plan_hash).to.equal(plan.accepted_hash);
    expect(await t.current.owner('audit_events').where({ practice_id: p.id, action: 'accept', actor_type: 'patient_link', patient_id: patientId })).to.have.length(1);
  });

  it('a plan the office changes while the patient reads it is not decided blind: refused, shown again, then decided as shown', async () => {
    const { patientId, planId } = await patientWithPlan('presented');
    const { path } = await makeLink(patientId, planId);
    const { g } = await tryDob(path, '1970-02-03');
    const page = await g.form('/portal/plan');
    const before = shownHash(page.text);
    // The coordinator adds an item meanwhile (the plan is presented, not decided: it may change).
    await inPractice(async (trx) => {
      const pc = new PracticeCrypto(fx.keyring, trx, p.id);
      const itemId = randomUUID();
      await trx('treatment_plan_items').insert({ id: itemId, practice_id: p.id, plan_id: planId, phase: 1, ...(await planItemSecrets.seal(pc, itemId, { content: { cdt: 'D0210', tooth: null, surfaces: null, description: 'Full-mouth X-rays', fee: 15000, insurance: 0 } })) });
    });
    const stale = await g.agent.post('/portal/decision').type('form').send({ _csrf: page.token, planHash: before, decision: 'accepted', fullName: 'Pat Testperson', signature: 'Pat Testperson' });
    expect(stale.status).to.equal(409);
    expect(stale.text).to.include('The office changed this plan while you were reading it').and.include('Full-mouth X-rays');
    expect(await inPractice((trx) => trx('plan_decisions').where({ plan_id: planId }))).to.have.length(0);
    expect((await inPractice((trx) => trx('treatment_plans').where({ id: planId }).first('status'))).status).to.equal('presented');
    const now = shownHash(stale.text);
    expect(now).to.not.equal(before);
    const ok = await g.agent.post('/portal/decision').type('form').send({ _csrf: page.token, planHash: now, decision: 'accepted', fullName: 'Pat Testperson', signature: 'Pat Testperson' });
    expect(ok.status).to.equal(303);
    expect((await inPractice((trx) => trx('treatment_plans').where({ id: planId }).first('accepted_hash'))).accepted_hash).to.equal(now);
  });

  it('five wrong dates of birth lock the link for good (the sixth is refused even when right) and alert the practice', async () => {
    const { patientId, planId } = await patientWithPlan('presented');
    const { path } = await makeLink(patientId, planId);
    for (let i = 1; i <= 4; i++) expect((await tryDob(path, '01/01/1999')).res.status, `attempt ${i}`).to.equal(401);
    const fifth = await tryDob(path, '01/01/1999');
    expect(fifth.res.status).to.equal(410);
    expect(fifth.res.text).to.include('(555) 010-9999');
    expect((await tryDob(path, '02/03/1970')).res.status, 'sixth, right').to.equal(410);
    expect((await browser(built.app).agent.get(path)).status).to.equal(410);
    const alerts = await inPractice((trx) => trx('security_alerts').where({ kind: 'link_lockout' }).select('details'));
    expect(alerts).to.have.length(1);
  });

  it('the date of birth as digits only (MMDDYYYY) works and counts like any answer; an unreadable one is a form error, not a try; the last try is announced', async () => {
    const { patientId, planId } = await patientWithPlan('presented');
    const { path } = await makeLink(patientId, planId);
    const tries = () => inPractice((trx) => trx('patient_links').where({ patient_id: patientId }).first('failed_attempts')).then((r) => r.failed_attempts as number);
    const unreadable = await tryDob(path, '13/45/1970');
    expect(unreadable.res.status).to.equal(400);
    expect(unreadable.res.text).to.match(/<p class="field-error" id="dob-error" role="alert">That date does not exist. Enter your date of birth as MM\/DD\/YYYY/);
    expect(unreadable.res.text).to.match(/<input id="dob"[^>]*aria-describedby="dob-hint dob-error"/);
    expect(unreadable.res.text, 'what was typed comes back to correct').to.match(/<input id="dob" name="dob" value="13\/45\/1970"/);
    expect((await tryDob(path, '2/3/70')).res.text).to.include('Use a four-digit year');
    expect(await tries(), 'unreadable dates are not counted').to.equal(0);
    for (let i = 1; i <= 3; i++) {
      const wrong = await tryDob(path, '01011999'); // digits only, and wrong: counted like any other answer
      expect(wrong.res.status).to.equal(401);
      expect(wrong.res.text).to.not.include('One try left');
    }
    expect(await tries()).to.equal(3);
    const fourth = await tryDob(path, '01/01/1999');
    expect(fourth.res.text).to.include('One try left').and.include('(555) 010-9999');
    const right = await tryDob(path, '02031970');
    expect(right.res.status).to.equal(303);
    expect(right.res.headers.location).to.equal('/portal');
  });

  it('every patient page carries the practice’s name and phone (and its logo once uploaded); the plan reads plainly on a phone', async () => {
    const { patientId, planId } = await patientWithPlan('presented');
    const { path } = await makeLink(patientId, planId);
    const first = await browser(built.app).agent.get(path);
    expect(first.text).to.match(/<header class="site-header practice-header">\s*<span class="brand">[^<]+<\/span>/).and.include('href="tel:5550109999"');
    const { g } = await tryDob(path, '1970-02-03');
    const home = await g.agent.get('/portal');
    expect(home.text).to.include('practice-header').and.include('Review your treatment plan');
    const plan = await g.agent.get('/portal/plan');
    // The total first, a plain-language line per item, no empty labels.
    expect(plan.text.indexOf('Your estimated portion: <strong>$600.00</strong>')).to.be.greaterThan(0);
    expect(plan.text.indexOf('Your estimated portion')).to.be.lessThan(plan.text.indexOf('Crown, porcelain'));
    expect(plan.text).to.include('A crown: a cap that covers the whole tooth').and.include('Tooth 3').and.not.include('surfaces');
    // Errors beside their fields, all at once.
    const page = await g.form('/portal/plan');
    const bad = await g.agent.post('/portal/decision').type('form').send({ _csrf: page.token, planHash: shownHash(page.text), fullName: '', signature: '' });
    expect(bad.status).to.equal(400);
    expect(bad.text).to.include('id="decision-err"').and.include('id="fullName-err"').and.match(/<input id="fullName"[^>]*aria-describedby="fullName-err"/);
    const ok = await g.agent.post('/portal/decision').type('form').send({ _csrf: page.token, planHash: shownHash(page.text), decision: 'accepted', fullName: 'Pat Testperson', signature: 'Pat Testperson' });
    expect(ok.status).to.equal(303);
    expect((await g.agent.get('/portal')).text).to.include('accepted, thank you').and.not.include('Review your treatment plan');
  });

  it('an unknown code gets the same answers as a wrong date; an expired or revoked link shows the neutral page', async () => {
    const unknown = `/l/${'A'.repeat(43)}`;
    expect((await browser(built.app).agent.get(unknown)).status).to.equal(200);
    const u = await tryDob(unknown, '02/03/1970');
    expect(u.res.status).to.equal(401);
    expect(u.res.text).to.include('That did not match our records.');

    const a = await patientWithPlan('presented');
    const revoked = await makeLink(a.patientId, a.planId);
    const linkId = (await inPractice((trx) => trx('patient_links').where({ patient_id: a.patientId }).first('id'))).id;
    const b = await signIn(built.app, p.slug, coordinator, clock);
    const page = await b.form(`/p/${p.slug}/patients/${a.patientId}/links`);
    expect((await b.agent.post(`/p/${p.slug}/links/${linkId}/revoke`).type('form').send({ _csrf: page.token })).status).to.equal(303);
    expect((await browser(built.app).agent.get(revoked.path)).status).to.equal(410);

    const e = await patientWithPlan('presented');
    const expiring = await makeLink(e.patientId, e.planId);
    clock.advance(8 * 86_400_000);
    expect((await browser(built.app).agent.get(expiring.path)).status).to.equal(410);
    expect((await tryDob(expiring.path, '02/03/1970')).res.status).to.equal(410);
  });
});
