import { useStaffApp, type StaffApp } from '../support/staff-app.js';
import { expect } from 'chai';
import { generate } from 'otplib';
import type { CryptoFixture } from '../support/crypto.js';
import { buildPatient, type BuiltPractice } from '../support/factories.js';
import { buildStaff, signIn, STAFF_PASSWORD, type BuiltStaff } from '../support/staff.js';
import { rememberPhi } from '../support/phi-scan.js';

const VALID = {
  givenName: 'Marisol',
  familyName: 'Quintanilla-Pereira',
  dateOfBirth: '03/14/1975',
  sex: 'female',
  phone: '(555) 010-7788',
  email: 'marisol@example.org',
  preferredContact: 'sms',
  addressLine1: '5 Example Lane',
  city: 'Springfield',
  region: 'IL',
  postalCode: '00000',
  insuranceCarrier: 'Example Mutual',
  insuranceMemberId: 'XMU-991122',
};

describe('patients: register, search, chart, minimum necessary, location scope, break-glass', () => {
  const { t, clock, inPractice } = useStaffApp({ slug: 'patients-http', locations: ['North', 'South'] }, (s) => ({ fx, p, built } = s));
  let fx: CryptoFixture;
  let p: BuiltPractice;
  let owner: BuiltStaff;
  let built: StaffApp['built'];
  let north: string;
  let south: string;
  const staff = (options: Parameters<typeof buildStaff>[3]) => buildStaff(t.current, { keyring: fx.keyring, now: clock.now }, p, options);
  const events = (where: Record<string, unknown>) => t.current.owner('audit_events').where({ practice_id: p.id, ...where }).orderBy('id').select('action', 'outcome', 'patient_id', 'actor_id', 'reason', 'details', 'resource_type', 'resource_id');

  before(async () => {
    rememberPhi(...Object.values(VALID), 'Quintanilla', 'Marisol', '1975-03-14', 'Okonkwo', 'Southerner', 'Emergencia', 'Failclosed', 'facial swelling', 'MEMBER-42424');
    [north, south] = p.locationIds as [string, string];
    owner = await staff({ owner: true });
  });

  it('registers a patient (encrypted at rest), opens the chart, and audits create and view with the patient id', async () => {
    const desk = await staff({ roles: ['front_desk'], locations: [north] });
    const b = await signIn(built.app, p.slug, desk, clock);
    const form = await b.form(`/p/${p.slug}/patients/new`);
    const created = await b.agent.post(`/p/${p.slug}/patients`).type('form').send({ _csrf: form.token, ...VALID, locationId: north });
    expect(created.status).to.equal(303);
    const id = /\/patients\/([0-9a-f-]{36})$/.exec(String(created.headers.location))![1]!;
    const raw = await inPractice((trx) => trx('patients').where({ id }).first());
    expect(JSON.stringify(raw)).to.not.include('Quintanilla').and.not.include('1975').and.not.include('7788');
    const chart = await b.agent.get(`/p/${p.slug}/patients/${id}`);
    expect(chart.status).to.equal(200);
    expect(chart.text).to.include('Quintanilla-Pereira, Marisol').and.include('Born 03/14/1975').and.include('XMU-991122');
    const audited = await events({ patient_id: id });
    expect(audited.map((e: { action: string }) => e.action)).to.deep.equal(['create', 'view']);
    expect(JSON.stringify(audited)).to.not.include('Quintanilla');
  });

  it('bad input is a 400 with the reason and creates nothing; a duplicate (same last name + DOB) is warned first', async () => {
    const desk = await staff({ roles: ['front_desk'], locations: [north] });
    const b = await signIn(built.app, p.slug, desk, clock);
    const form = await b.form(`/p/${p.slug}/patients/new`);
    const count = () => inPractice((trx) => trx('patients').count<{ n: string }[]>({ n: '*' })).then((r) => Number(r[0]!.n));
    const before = await count();
    const post = (over: object) => b.agent.post(`/p/${p.slug}/patients`).type('form').send({ _csrf: form.token, ...VALID, familyName: 'Okonkwo', locationId: north, ...over });
    for (const [over, message] of [
      [{ dateOfBirth: '02/30/1990' }, 'Enter the date of birth as MM/DD/YYYY'],
      [{ dateOfBirth: '01/01/2999' }, 'cannot be in the future'],
      [{ dateOfBirth: '1/2/90' }, 'Use a four-digit year'],
      [{ givenName: '' }, 'Enter the first name.'],
      [{ phone: '12' }, 'Enter a phone number with 7 to 15 digits.'],
      [{ email: 'nope' }, 'Enter a valid email address.'],
      [{ sex: 'robot' }, 'Choose a sex from the list.'],
      [{ locationId: 'x' }, 'Choose a location.'],
    ] as const) {
      const res = await post(over);
      expect(res.status, JSON.stringify(over)).to.equal(400);
      expect(res.text).to.include(message);
    }
    // Every error at once, each beside its field (aria-describedby → the message's id).
    const all = await post({ givenName: '', dateOfBirth: '13/45/1990', phone: '12', email: 'nope' });
    expect(all.status).to.equal(400);
    expect(all.text).to.include('4 fields need attention');
    for (const [field, message] of [['givenName', 'Enter the first name.'], ['dateOfBirth', 'That date does not exist'], ['phone', '7 to 15 digits'], ['email', 'valid email']] as const) {
      expect(all.text, field).to.match(new RegExp(`<input id="${field}"[^>]*aria-invalid="true"[^>]*aria-describedby="[^"]*${field}-err`));
      expect(all.text, field).to.match(new RegExp(`<p class="field-error" id="${field}-err">[^<]*${message}`));
    }
    const elsewhere = await post({ locationId: south });
    expect(elsewhere.status).to.equal(403);
    expect(await count()).to.equal(before);

    expect((await post({})).status).to.equal(303);
    const dup = await post({ givenName: 'Ada' });
    expect(dup.status).to.equal(409);
    expect(dup.text).to.include('same last name and date of birth').and.include('Okonkwo, Marisol');
    expect(await count()).to.equal(before + 1);
    expect((await post({ givenName: 'Ada', confirmDuplicate: 'yes' })).status).to.equal(303);
    expect(await count()).to.equal(before + 2);
  });

  it('finds patients by last name, date of birth, phone or email — by POST, so nothing identifying is in a URL or the log', async () => {
    const pat = await buildPatient(t.current.db, fx.keyring, p, { familyName: "O'Shaughnessy", dateOfBirth: '1961-07-04', phone: '555-010-3141', email: 'osh@example.org', locationId: north });
    const hyg = await staff({ roles: ['hygienist'], locations: [north] });
    const b = await signIn(built.app, p.slug, hyg, clock);
    const page = await b.form(`/p/${p.slug}/patients`);
    for (const q of ['oshaughnessy', '07/04/1961', '(555) 010-3141', 'OSH@example.org']) {
      const res = await b.agent.post(`/p/${p.slug}/patients/search`).type('form').send({ _csrf: page.token, q });
      expect(res.status, q).to.equal(200);
      expect(res.text, q).to.include(`/patients/${pat.id}`);
    }
    const none = await b.agent.post(`/p/${p.slug}/patients/search`).type('form').send({ _csrf: page.token, q: 'Nobodyhere' });
    expect(none.text).to.include('No patient matches');
    const short = await b.agent.post(`/p/${p.slug}/patients/search`).type('form').send({ _csrf: page.token, q: 'a' });
    expect(short.status).to.equal(400);
    expect((await events({ action: 'search', actor_id: hyg.id, patient_id: pat.id })).length).to.equal(4);
    const logged = JSON.stringify(built.logs);
    // (Searched strings long enough not to occur by chance in ids and timings.)
    for (const phi of ['haughnessy', '1961-07-04', '07/04/1961', '010-3141', 'osh@example']) expect(logged).to.not.include(phi);
  });

  it('minimum necessary: billing sees insurance, a hygienist does not; front desk sees demographics', async () => {
    const pat = await buildPatient(t.current.db, fx.keyring, p, { memberId: 'MEMBER-42424', locationId: north });
    for (const [roles, sees] of [[['billing'], true], [['hygienist'], false], [['front_desk'], true]] as const) {
      const u = await staff({ roles: [...roles], locations: [north] });
      const b = await signIn(built.app, p.slug, u, clock);
      const chart = await b.agent.get(`/p/${p.slug}/patients/${pat.id}`);
      expect(chart.status, roles[0]).to.equal(200);
      expect(chart.text.includes('MEMBER-42424'), roles[0]).to.equal(sees);
      expect(chart.text, roles[0]).to.include('(555) 010-2233');
    }
  });

  it('location scope: a patient at another location is not found (audited); search offers emergency access without a name', async () => {
    const pat = await buildPatient(t.current.db, fx.keyring, p, { familyName: 'Southerner', locationId: south });
    const hyg = await staff({ roles: ['hygienist'], locations: [north] });
    const b = await signIn(built.app, p.slug, hyg, clock);
    expect((await b.agent.get(`/p/${p.slug}/patients/${pat.id}`)).status).to.equal(404);
    expect((await events({ action: 'permission_denied', actor_id: hyg.id, patient_id: pat.id })).length).to.equal(1);
    const page = await b.form(`/p/${p.slug}/patients`);
    const res = await b.agent.post(`/p/${p.slug}/patients/search`).type('form').send({ _csrf: page.token, q: 'southerner' });
    expect(res.text).to.include(`/patients/${pat.id}/break-glass`).and.include('A patient at South').and.not.include('Southerner, Pat');
  });

  it('break-glass: denied before; allowed after step-up and a written reason; banner, alert and audit; expires on time; reviewed by the owner', async () => {
    const pat = await buildPatient(t.current.db, fx.keyring, p, { familyName: 'Emergencia', locationId: south });
    const provider = await staff({ roles: ['provider'], locations: [north], name: 'Dr Provider' });
    const b = await signIn(built.app, p.slug, provider, clock);
    expect((await b.agent.get(`/p/${p.slug}/patients/${pat.id}`)).status).to.equal(404);

    clock.advance(6 * 60_000);
    const form = await b.form(`/p/${p.slug}/patients/${pat.id}/break-glass`);
    expect(form.status).to.equal(200);
    expect(form.text).to.not.include('Emergencia');
    const demanded = await b.agent.post(`/p/${p.slug}/patients/${pat.id}/break-glass`).type('form').send({ _csrf: form.token, reasonCode: 'emergency', justification: 'Patient in the chair with facial swelling' });
    expect(demanded.status).to.equal(303);
    expect(String(demanded.headers.location)).to.match(/\/step-up\?next=/);
    expect((await b.agent.get(`/p/${p.slug}/patients/${pat.id}`)).status).to.equal(404);

    clock.advance(30_000);
    const step = await b.form(String(demanded.headers.location));
    await b.agent.post(`/p/${p.slug}/step-up`).type('form').send({ _csrf: step.token, password: STAFF_PASSWORD, code: await generate({ secret: provider.secret!, epoch: Math.floor(clock.now() / 1000) }), next: `/p/${p.slug}/patients/${pat.id}/break-glass` });
    // Back on the form after the step-up: the reason as typed, kept sealed in the session (never in the URL).
    expect(String(demanded.headers.location)).to.not.include('swelling');
    const sessions = await t.current.owner('http_sessions').select('sess');
    expect(JSON.stringify(sessions)).to.include('"stash"').and.not.include('facial swelling');
    const again = await b.form(`/p/${p.slug}/patients/${pat.id}/break-glass`);
    expect(again.text).to.include('Your reason is below as you typed it').and.include('>Patient in the chair with facial swelling</textarea>').and.match(/<option value="emergency" selected>/);
    // Taken once: a reload shows the empty form.
    expect((await b.agent.get(`/p/${p.slug}/patients/${pat.id}/break-glass`)).text).to.not.include('facial swelling');
    const tooShort = await b.agent.post(`/p/${p.slug}/patients/${pat.id}/break-glass`).type('form').send({ _csrf: again.token, reasonCode: 'emergency', justification: 'because' });
    expect(tooShort.status).to.equal(400);
    expect(tooShort.text).to.include('Write at least a sentence');
    const noReason = await b.agent.post(`/p/${p.slug}/patients/${pat.id}/break-glass`).type('form').send({ _csrf: again.token, justification: 'Patient in the chair with facial swelling' });
    expect(noReason.status).to.equal(400);
    const granted = await b.agent.post(`/p/${p.slug}/patients/${pat.id}/break-glass`).type('form').send({ _csrf: again.token, reasonCode: 'emergency', justification: 'Patient in the chair with facial swelling' });
    expect(granted.status).to.equal(303);
    const chart = await b.agent.get(`/p/${p.slug}/patients/${pat.id}`);
    expect(chart.status).to.equal(200);
    expect(chart.text).to.include('EMERGENCY ACCESS until').and.include('Emergencia, Pat');

    const bg = await events({ action: 'break_glass', patient_id: pat.id });
    expect(bg).to.have.length(1);
    expect(bg[0]).to.deep.include({ outcome: 'allowed', actor_id: provider.id, reason: 'emergency', resource_type: 'break_glass_grant' });
    expect(JSON.stringify(bg)).to.not.include('swelling');
    const grantId = bg[0]!.resource_id as string;
    expect((await events({ action: 'view', patient_id: pat.id, actor_id: provider.id }))[0]).to.deep.include({ reason: 'emergency' });
    const alerts = await inPractice((trx) => trx('security_alerts').where({ kind: 'break_glass' }).select('details', 'severity'));
    expect(alerts.map((a: { details: { target_id: string } }) => a.details.target_id)).to.include(grantId);
    const stored = await inPractice((trx) => trx('break_glass_grants').where({ id: grantId }).first('justification', 'expires_at'));
    expect(stored.justification.toString()).to.not.include('swelling');

    // An hour later (a fresh sign-in: the old session idled out), the grant has run out.
    clock.advance(60 * 60_000);
    const later = await signIn(built.app, p.slug, provider, clock);
    expect((await later.agent.get(`/p/${p.slug}/patients/${pat.id}`)).status, 'expired after 60 minutes').to.equal(404);

    const o = await signIn(built.app, p.slug, owner, clock);
    const review = await o.form(`/p/${p.slug}/break-glass`);
    expect(review.text).to.include('Dr Provider').and.include('Patient in the chair with facial swelling').and.include('Emergencia, Pat');
    expect((await o.agent.post(`/p/${p.slug}/break-glass/${grantId}/review`).type('form').send({ _csrf: review.token })).status).to.equal(303);
    const reviewed = await inPractice((trx) => trx('break_glass_grants').where({ id: grantId }).first('reviewed_by', 'reviewed_at'));
    expect(reviewed.reviewed_by).to.equal(owner.id);
    expect((await o.agent.get(`/p/${p.slug}/break-glass`)).text).to.include('Reviewed by');
  });

  it('break-glass is refused to roles without it and pointless for patients one already covers', async () => {
    const pat = await buildPatient(t.current.db, fx.keyring, p, { locationId: south });
    const desk = await staff({ roles: ['front_desk'], locations: [north] });
    const d = await signIn(built.app, p.slug, desk, clock);
    expect((await d.agent.get(`/p/${p.slug}/patients/${pat.id}/break-glass`)).status).to.equal(404);
    const covering = await staff({ roles: ['provider'], locations: [north, south] });
    const c = await signIn(built.app, p.slug, covering, clock);
    expect((await c.agent.get(`/p/${p.slug}/patients/${pat.id}/break-glass`)).status).to.equal(404);
    expect((await c.agent.get(`/p/${p.slug}/patients/${pat.id}`)).status).to.equal(200);
  });

  it('the per-patient access history lists who opened the record; roles without audit.read are refused', async () => {
    const pat = await buildPatient(t.current.db, fx.keyring, p, { locationId: north });
    const hyg = await staff({ roles: ['hygienist'], locations: [north], name: 'Hana Hygienist' });
    const h = await signIn(built.app, p.slug, hyg, clock);
    await h.agent.get(`/p/${p.slug}/patients/${pat.id}`);
    expect((await h.agent.get(`/p/${p.slug}/patients/${pat.id}/access`)).status).to.equal(404);
    const o = await signIn(built.app, p.slug, owner, clock);
    const history = await o.agent.get(`/p/${p.slug}/patients/${pat.id}/access`);
    expect(history.status).to.equal(200);
    expect(history.text).to.include('Hana Hygienist').and.include('permission_denied');
    expect((await events({ action: 'view', resource_type: 'audit_log', patient_id: pat.id })).length).to.equal(1);
  });

  it('fails closed: when the audit write fails, the chart is a 500 with no PHI', async () => {
    const pat = await buildPatient(t.current.db, fx.keyring, p, { familyName: 'Failclosed', locationId: north });
    const o = await signIn(built.app, p.slug, owner, clock);
    await t.current.owner.raw(`
      CREATE FUNCTION test_fail_audit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF NEW.action = 'view' THEN RAISE EXCEPTION 'audit storage unavailable'; END IF; RETURN NEW; END $$;
      CREATE TRIGGER test_fail_audit BEFORE INSERT ON audit_events FOR EACH ROW EXECUTE FUNCTION test_fail_audit();
    `);
    try {
      const res = await o.agent.get(`/p/${p.slug}/patients/${pat.id}`);
      expect(res.status).to.equal(500);
      expect(res.text).to.not.include('Failclosed').and.not.include('555');
    } finally {
      await t.current.owner.raw('DROP TRIGGER test_fail_audit ON audit_events; DROP FUNCTION test_fail_audit();');
    }
  });
});
