import { useStaffApp, type StaffApp } from '../support/staff-app.js';
import { expect } from 'chai';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Knex } from 'knex';
import { generate } from 'otplib';
import { createOperator } from '../../src/services/operators/operators.service.js';
import { INSTALLATION_ID } from '../../src/db/tenant.js';
import { ACCOUNT_MAX_FAILURES } from '../../src/auth/throttle.js';
import { sealAll } from '../../src/audit/sealer.js';
import { verifyPractice } from '../../src/audit/verify.js';
import { auditChainIds } from '../../src/queries/practices.queries.js';
import { accessReviewsJob } from '../../src/jobs/access-reviews.job.js';
import { runJob } from '../../src/jobs/scheduler.js';
import { createLogger } from '../../src/config/logger.js';
import { MemoryTransport } from '../support/mail.js';
import { browser } from '../support/browser.js';
import type { CryptoFixture } from '../support/crypto.js';
import { buildPatient, buildPractice, type BuiltPractice } from '../support/factories.js';
import { buildStaff, signIn, type BuiltStaff } from '../support/staff.js';
import { rememberPhi } from '../support/phi-scan.js';

describe('operators: a separate kind of account, practice management without PHI, support grants', () => {
  const { t, clock } = useStaffApp({ slug: 'ops-http', name: 'Molar Bear Dental' }, (s) => ({ fx, p, built } = s));
  let fx: CryptoFixture;
  let p: BuiltPractice;
  let owner: BuiltStaff;
  let built: StaffApp['built'];
  let op: { id: string; email: string; password: string; secret: string };
  const inPractice = <T>(practiceId: string, fn: (trx: Knex.Transaction) => Promise<T>): Promise<T> => t.current.db.withPractice(practiceId, { kind: 'system', id: 'test' }, fn);

  async function operatorSession() {
    clock.advance(30_000);
    const b = browser(built.app);
    const page = await b.form('/operator/sign-in');
    const res = await b.agent.post('/operator/sign-in').type('form').send({ _csrf: page.token, email: op.email, password: op.password, code: await generate({ secret: op.secret, epoch: Math.floor(clock.now() / 1000) }) });
    expect(res.headers.location).to.equal('/operator');
    return b;
  }

  before(async () => {
    rememberPhi('Neverseen');
    owner = await buildStaff(t.current, { keyring: fx.keyring, now: clock.now }, p, { owner: true });
    const created = await createOperator(t.current.db.knex, fx.keyring.provider, { email: 'ops@platform.example', displayName: 'Olga Operator' });
    op = { ...created, email: 'ops@platform.example' };
  });

  it('signs in with password and TOTP together; wrong or replayed codes get the neutral answer; the secret is stored wrapped', async () => {
    const row = await t.current.owner('operators').where({ id: op.id }).first('totp_wrapped', 'password_hash');
    expect(row.totp_wrapped.toString('latin1')).to.not.include(op.secret);
    const b = browser(built.app);
    const page = await b.form('/operator/sign-in');
    const wrong = await b.agent.post('/operator/sign-in').type('form').send({ _csrf: page.token, email: op.email, password: op.password, code: '000000' });
    expect(wrong.status).to.equal(401);
    const unknown = await b.agent.post('/operator/sign-in').type('form').send({ _csrf: page.token, email: 'nobody@platform.example', password: op.password, code: '000000' });
    expect(unknown.status).to.equal(401);
    expect(unknown.text.replace(/value="[^"]*"/g, '')).to.equal(wrong.text.replace(/value="[^"]*"/g, ''));
    clock.advance(10_000); // past the growing delay of the failure
    const s = await operatorSession();
    expect((await s.agent.get('/operator')).text).to.include('Molar Bear Dental');
  });

  it('operator and staff sessions never cross: each is sent to its own sign-in', async () => {
    const s = await operatorSession();
    const staffPage = await s.agent.get(`/p/${p.slug}/users`);
    expect(staffPage.status).to.equal(303);
    expect(staffPage.headers.location).to.equal(`/p/${p.slug}/sign-in`);
    const staff = await signIn(built.app, p.slug, owner, clock);
    const console = await staff.agent.get('/operator');
    expect(console.status).to.equal(303);
    expect(console.headers.location).to.equal('/operator/sign-in');
  });

  it('creates a practice whose owner is invited by a single-use link and must set up MFA; bad input is a form error', async () => {
    const s = await operatorSession();
    const form = await s.form('/operator/practices/new');
    const post = (body: object) => s.agent.post('/operator/practices').type('form').send({ _csrf: form.token, name: 'Canine Clinic', slug: 'canine-clinic', locationName: 'Main', phone: '(555) 010-1212', ownerName: 'Cora Owner', ownerEmail: 'cora@canine.example', ...body });
    const badSlug = await post({ slug: '-Bad Slug-' });
    expect(badSlug.status).to.equal(400);
    expect(badSlug.text).to.include('lowercase letters, digits and dashes');
    expect((await post({ ownerEmail: 'nope' })).text).to.include('Enter a valid email address for the owner.');
    expect((await post({ slug: p.slug })).status).to.equal(409);
    const created = await post({});
    expect(created.status).to.equal(201);
    const link = /(http[^<\s]+\/invitations\/[A-Za-z0-9_-]{43})/.exec(created.text)![1]!;

    const guest = browser(built.app);
    const path = new URL(link).pathname;
    const accept = await guest.form(path);
    await guest.agent.post(path).type('form').send({ _csrf: accept.token, password: 'tartar scaler floss rinse', confirm: 'tartar scaler floss rinse' });
    const signInPage = await guest.form('/p/canine-clinic/sign-in');
    const signed = await guest.agent.post('/p/canine-clinic/sign-in').type('form').send({ _csrf: signInPage.token, email: 'cora@canine.example', password: 'tartar scaler floss rinse' });
    expect(signed.headers.location).to.equal('/p/canine-clinic/mfa/enroll');

    const practice = await t.current.owner('practices').where({ slug: 'canine-clinic' }).first('id');
    const events = await t.current.owner('audit_events').where({ practice_id: practice.id, actor_type: 'operator' }).select('action', 'actor_id');
    expect(events).to.deep.include({ action: 'create', actor_id: op.id });
    const roles = await inPractice(practice.id, (trx) => trx('roles').count<{ n: string }[]>({ n: '*' }));
    expect(Number(roles[0]!.n)).to.equal(7);
  });

  it('the Backups page: none taken and no drill yet says so; a passed drill shows its recovery point and time; a failed one a banner', async () => {
    const s = await operatorSession();
    const empty = await s.agent.get('/operator/backups');
    expect(empty.status).to.equal(200);
    expect(empty.text).to.include('No restore drill has passed yet').and.include('None yet. Take one now with');
    expect(empty.text, 'an external database without BACKUP_DATABASE_URL cannot be backed up: the page says so').to.include('Backups are not configured');
    const dir = built.config.backup.dir;
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, 'enamel-backup-20261201T014300Z-0a1b2c3d.enbak'), Buffer.alloc(2_500_000));
    const drill = { practice_id: INSTALLATION_ID, backup_id: null, backup_created_at: null, tables: 39, rows: 1234, files: 24, chains: 2 };
    await inPractice(INSTALLATION_ID, (trx) => trx('restore_drills').insert({ ...drill, ran_at: new Date(clock.now() - 60_000), outcome: 'passed', rpo_seconds: 5400, rto_seconds: 42, failure: null }));
    const passed = await s.agent.get('/operator/backups');
    expect(passed.text).to.include('enamel-backup-20261201T014300Z-0a1b2c3d.enbak').and.include('2.5 MB');
    expect(passed.text).to.include('recovery point <strong>1.5 h</strong>').and.include('recovery time <strong>42 s</strong>').and.include('1,234 rows');
    await inPractice(INSTALLATION_ID, (trx) => trx('restore_drills').insert({ ...drill, ran_at: new Date(clock.now()), outcome: 'failed', rpo_seconds: 60, rto_seconds: null, failure: 'verification db/patients' }));
    const failed = await s.agent.get('/operator/backups');
    expect(failed.text).to.include('The last restore drill failed').and.include('verification db/patients');
    await rm(dir, { recursive: true, force: true });
    // Staff never reach it.
    expect((await (await signIn(built.app, p.slug, owner, clock)).agent.get('/operator/backups')).status).to.not.equal(200);
  });

  it('suspends and re-activates a practice: suspended, every page of it is gone', async () => {
    const other = await buildPractice(t.current.owner, { slug: 'to-suspend' });
    const staffer = await buildStaff(t.current, { keyring: fx.keyring, now: clock.now }, other, { owner: true });
    const signedIn = await signIn(built.app, 'to-suspend', staffer, clock);
    expect((await signedIn.agent.get('/p/to-suspend/home')).status).to.equal(200);
    const s = await operatorSession();
    const page = await s.form(`/operator/practices/${other.id}`);
    expect((await s.agent.post(`/operator/practices/${other.id}/status`).type('form').send({ _csrf: page.token, status: 'suspended' })).status).to.equal(303);
    expect((await browser(built.app).agent.get('/p/to-suspend/sign-in')).status).to.equal(404);
    const afterSuspension = await signedIn.agent.get('/p/to-suspend/home');
    expect(afterSuspension.status, 'a session signed in before the suspension acts no more, on its next request').to.equal(303);
    expect(afterSuspension.headers.location).to.match(/^\/p\/to-suspend\/sign-in/);
    expect((await s.agent.post(`/operator/practices/${other.id}/status`).type('form').send({ _csrf: page.token, status: 'deleted' })).status).to.equal(400);
    await s.agent.post(`/operator/practices/${other.id}/status`).type('form').send({ _csrf: page.token, status: 'active' });
    expect((await browser(built.app).agent.get('/p/to-suspend/sign-in')).status).to.equal(200);
  });

  it('changes the retention settings within the allowed ranges only, each change audited with the old and new value; the security settings are not the operator\u2019s', async () => {
    const s = await operatorSession();
    const page = await s.form(`/operator/practices/${p.id}`);
    expect(page.text).to.include('Save retention settings').and.not.include('name="sessionIdleMinutes"').and.not.include('name="mfaRequiredForAll"');
    const bad = await s.agent.post(`/operator/practices/${p.id}/settings`).type('form').send({ _csrf: page.token, patientPurgeGraceDays: '0', inactiveAccountDays: '90', auditRetentionYears: '6' });
    expect(bad.status).to.equal(400);
    expect(bad.text).to.include('Deleted patients are purged after 1 to 365 days.');
    const shortAudit = await s.agent.post(`/operator/practices/${p.id}/settings`).type('form').send({ _csrf: page.token, patientPurgeGraceDays: '30', inactiveAccountDays: '90', auditRetentionYears: '5' });
    expect(shortAudit.status, 'audit retention is never shorter than six years').to.equal(400);
    expect(shortAudit.text).to.include('Audit events are kept 6 years at least');
    expect(await inPractice(p.id, (trx) => trx('practice_settings').update({ audit_retention_years: 5 })).catch((e: Error) => e.message)).to.include('check constraint');
    // A session limit sent along is ignored: it is the owner's setting.
    const ok = await s.agent.post(`/operator/practices/${p.id}/settings`).type('form').send({ _csrf: page.token, patientPurgeGraceDays: '30', auditRetentionYears: '10', inactiveAccountDays: '120', sessionIdleMinutes: '5' });
    expect(ok.status).to.equal(303);
    const settings = await inPractice(p.id, (trx) => trx('practice_settings').first('session_idle_minutes', 'audit_retention_years', 'inactive_account_days'));
    expect(settings).to.deep.equal({ session_idle_minutes: 30, audit_retention_years: 10, inactive_account_days: 120 });
    const changes = await t.current.owner('audit_events').where({ practice_id: p.id, action: 'settings_change', actor_type: 'operator' }).pluck('details');
    expect(changes).to.deep.include.members([
      { setting: 'audit_retention_years', from_value: 6, to_value: 10 },
      { setting: 'inactive_account_days', from_value: 90, to_value: 120 },
    ]);
    expect(changes).to.have.length(2);
    await inPractice(p.id, (trx) => trx('practice_settings').update({ audit_retention_years: 6, inactive_account_days: 90 }));
  });

  it('step-up before suspending, terminating or changing settings once the sign-in is more than five minutes old', async () => {
    const s = await operatorSession();
    clock.advance(6 * 60_000);
    const page = await s.form(`/operator/practices/${p.id}`);
    const refused = await s.agent.post(`/operator/practices/${p.id}/status`).type('form').send({ _csrf: page.token, status: 'suspended' });
    expect(refused.status).to.equal(303);
    expect(refused.headers.location).to.equal(`/operator/step-up?next=${encodeURIComponent(`/operator/practices/${p.id}`)}`);
    expect(await t.current.owner('practices').where({ id: p.id }).first('status')).to.deep.equal({ status: 'active' });
    const stepUp = await s.form(String(refused.headers.location));
    const wrong = await s.agent.post('/operator/step-up').type('form').send({ _csrf: stepUp.token, password: op.password, code: '000000', next: `/operator/practices/${p.id}` });
    expect(wrong.status).to.equal(401);
    clock.advance(30_000);
    const ok = await s.agent.post('/operator/step-up').type('form').send({ _csrf: stepUp.token, password: op.password, code: await generate({ secret: op.secret, epoch: Math.floor(clock.now() / 1000) }), next: `/operator/practices/${p.id}` });
    expect(ok.headers.location).to.equal(`/operator/practices/${p.id}`);
    const steps = await t.current.owner('audit_events').where({ practice_id: INSTALLATION_ID, action: 'step_up', actor_id: op.id }).pluck('outcome');
    expect(steps).to.deep.equal(['denied', 'allowed']);
  });

  it('sees no PHI; with a grant from the owner sees accounts until it is revoked or expires; every step audited', async () => {
    const patient = await buildPatient(t.current.db, fx.keyring, p, { familyName: 'Neverseen' });
    const s = await operatorSession();
    const before = await s.agent.get(`/operator/practices/${p.id}`);
    expect(before.text).to.include('No access granted').and.not.include(owner.email);

    const o = await signIn(built.app, p.slug, owner, clock);
    const page = await o.form(`/p/${p.slug}/operator-access`);
    const unknown = await o.agent.post(`/p/${p.slug}/operator-access`).type('form').send({ _csrf: page.token, operatorEmail: 'who@platform.example', caseReference: 'CASE-77', hours: '4' });
    expect(unknown.status).to.equal(400);
    expect(unknown.text).to.include('no active operator');
    const nameInCase = await o.agent.post(`/p/${p.slug}/operator-access`).type('form').send({ _csrf: page.token, operatorEmail: op.email, caseReference: 'Jane Doe', hours: '4' });
    expect(nameInCase.status).to.equal(400);
    const tooLong = await o.agent.post(`/p/${p.slug}/operator-access`).type('form').send({ _csrf: page.token, operatorEmail: op.email, caseReference: 'CASE-77', hours: '500' });
    expect(tooLong.status).to.equal(400);
    const granted = await o.agent.post(`/p/${p.slug}/operator-access`).type('form').send({ _csrf: page.token, operatorEmail: op.email, caseReference: 'CASE-77', hours: '2' });
    expect(granted.status).to.equal(303);

    const during = await s.agent.get(`/operator/practices/${p.id}`);
    expect(during.text).to.include('CASE-77').and.include(owner.email).and.not.include('Neverseen');
    for (const url of ['/operator', `/operator/practices/${p.id}`]) expect((await s.agent.get(url)).text).to.not.include('Neverseen');
    expect((await s.agent.get(`/p/${p.slug}/patients/${patient.id}`)).status).to.equal(303);

    const grantId = (await inPractice(p.id, (trx) => trx('operator_grants').where({ case_reference: 'CASE-77' }).first('id'))).id;
    const list = await o.form(`/p/${p.slug}/operator-access`);
    expect((await o.agent.post(`/p/${p.slug}/operator-access/${grantId}/revoke`).type('form').send({ _csrf: list.token })).status).to.equal(303);
    expect((await s.agent.get(`/operator/practices/${p.id}`)).text).to.include('No access granted');

    // A second grant simply runs out.
    const again = await o.form(`/p/${p.slug}/operator-access`);
    await o.agent.post(`/p/${p.slug}/operator-access`).type('form').send({ _csrf: again.token, operatorEmail: op.email, caseReference: 'CASE-78', hours: '1' });
    expect((await s.agent.get(`/operator/practices/${p.id}`)).text).to.include('CASE-78');
    clock.advance(61 * 60_000);
    const s2 = await operatorSession();
    expect((await s2.agent.get(`/operator/practices/${p.id}`)).text).to.include('No access granted');

    const audited = await t.current.owner('audit_events').where({ practice_id: p.id }).whereIn('action', ['operator_grant', 'operator_revoke', 'list']).select('action', 'actor_type', 'reason');
    expect(audited.filter((e: { action: string }) => e.action === 'operator_grant')).to.have.length(2);
    expect(audited.filter((e: { action: string }) => e.action === 'operator_revoke')).to.have.length(1);
    expect(audited).to.deep.include({ action: 'list', actor_type: 'operator', reason: 'support_case' });
  });

  it('front desk cannot grant operator access', async () => {
    const desk = await buildStaff(t.current, { keyring: fx.keyring, now: clock.now }, p, { roles: ['front_desk'] });
    const d = await signIn(built.app, p.slug, desk, clock);
    expect((await d.agent.get(`/p/${p.slug}/operator-access`)).status).to.equal(404);
  });

  it('terminates a practice only with a 30–60 day tail and the address typed; shows the scheduler’s runs; staff never reach either page', async () => {
    const ending = await buildPractice(t.current.owner, { slug: 'ops-ending', name: 'Ending Dental' });
    const s = await operatorSession();
    const page = await s.form(`/operator/practices/${ending.id}`);
    expect(page.text).to.include('Terminate service');
    const short = await s.agent.post(`/operator/practices/${ending.id}/terminate`).type('form').send({ _csrf: page.token, tailDays: '10', confirmSlug: 'ops-ending' });
    expect(short.status).to.equal(400);
    expect(short.text).to.include('The tail is at least 30 days.');
    const unconfirmed = await s.agent.post(`/operator/practices/${ending.id}/terminate`).type('form').send({ _csrf: page.token, tailDays: '45', confirmSlug: 'ops-http' });
    expect(unconfirmed.status).to.equal(400);
    expect(await t.current.owner('practices').where({ id: ending.id }).first('terminated_at')).to.deep.equal({ terminated_at: null });
    const done = await s.agent.post(`/operator/practices/${ending.id}/terminate`).type('form').send({ _csrf: page.token, tailDays: '45', confirmSlug: 'ops-ending' });
    expect(done.status).to.equal(303);
    const row = await t.current.owner('practices').where({ id: ending.id }).first('terminated_at', 'purge_after', 'status');
    expect(row.status).to.equal('active');
    expect(row.purge_after.getTime() - row.terminated_at.getTime()).to.equal(45 * 86_400_000);
    expect((await s.agent.get(`/operator/practices/${ending.id}`)).text).to.include('Terminated on');
    expect(await t.current.owner('audit_events').where({ practice_id: ending.id, action: 'practice_terminate', actor_type: 'operator' })).to.have.length(1);

    await t.current.owner('job_runs').insert({ job: 'retention', trigger: 'manual', outcome: 'ok', finished_at: new Date(), counts: JSON.stringify({ purged: 3 }) });
    const jobs = await s.agent.get('/operator/jobs');
    expect(jobs.status).to.equal(200);
    expect(jobs.text).to.include('retention').and.include('purged: 3');
    const d = await signIn(built.app, p.slug, owner, clock);
    expect((await d.agent.get('/operator/jobs')).headers.location).to.equal('/operator/sign-in');
  });

  it('operator sign-in failures lock after five and raise an installation alert; success, failure and lockout are in the installation chain, which verifies', async () => {
    const locked = await createOperator(t.current.db.knex, fx.keyring.provider, { email: 'lockme@platform.example', displayName: 'Lock Me' });
    const b = browser(built.app);
    const page = await b.form('/operator/sign-in');
    for (let i = 0; i < ACCOUNT_MAX_FAILURES; i++) {
      await b.agent.post('/operator/sign-in').type('form').send({ _csrf: page.token, email: 'lockme@platform.example', password: locked.password, code: '000000' });
      clock.advance(10_000);
    }
    const right = await b.agent.post('/operator/sign-in').type('form').send({ _csrf: page.token, email: 'lockme@platform.example', password: locked.password, code: await generate({ secret: locked.secret, epoch: Math.floor(clock.now() / 1000) }) });
    expect(right.status, 'locked: even the right code is refused').to.equal(401);
    const events = await t.current.owner('audit_events').where({ practice_id: INSTALLATION_ID, resource_id: locked.id }).pluck('action');
    expect(events.filter((e: string) => e === 'login_failed')).to.have.length(ACCOUNT_MAX_FAILURES + 1);
    expect(events).to.include('lockout');
    const alerts = await t.current.db.withPractice(INSTALLATION_ID, { kind: 'system', id: 'test' }, (trx) => trx('security_alerts').where({ kind: 'signin_lockout' }).pluck('details'));
    expect(alerts.map((d: { target_id: string }) => d.target_id)).to.include(locked.id);
    await operatorSession();
    expect(await t.current.owner('audit_events').where({ practice_id: INSTALLATION_ID, action: 'login', actor_id: op.id })).to.not.have.length(0);
    await sealAll(t.current.db);
    const verified = await verifyPractice(t.current.db, fx.keyring.provider, INSTALLATION_ID);
    expect(verified).to.deep.include({ ok: true });
    expect(verified.checked).to.be.greaterThan(ACCOUNT_MAX_FAILURES);
    // The installation chain is one of the chains `enamel audit verify` and the jobs check.
    expect(await auditChainIds(t.current.db.knex)).to.include(INSTALLATION_ID);
  });

  it('deactivating an operator (step-up) ends its session and its sign-in; reactivation issues new credentials; never oneself or the last one', async () => {
    const other = await createOperator(t.current.db.knex, fx.keyring.provider, { email: 'other-op@platform.example', displayName: 'Otto Other' });
    clock.advance(30_000);
    const theirs = browser(built.app);
    const signInPage = await theirs.form('/operator/sign-in');
    await theirs.agent.post('/operator/sign-in').type('form').send({ _csrf: signInPage.token, email: 'other-op@platform.example', password: other.password, code: await generate({ secret: other.secret, epoch: Math.floor(clock.now() / 1000) }) });
    expect((await theirs.agent.get('/operator')).status).to.equal(200);

    const s = await operatorSession();
    const list = await s.form('/operator/operators');
    expect(list.text).to.include('Otto Other').and.include('Olga Operator (you)');
    const self = await s.agent.post(`/operator/operators/${op.id}/deactivate`).type('form').send({ _csrf: list.token });
    expect(self.status).to.equal(409);
    expect(self.text).to.include('cannot deactivate your own account');
    clock.advance(6 * 60_000);
    const stale = await s.agent.post(`/operator/operators/${other.id}/deactivate`).type('form').send({ _csrf: list.token });
    expect(stale.headers.location, 'step-up first').to.match(/^\/operator\/step-up\?next=/);
    const stepUp = await s.form(String(stale.headers.location));
    await s.agent.post('/operator/step-up').type('form').send({ _csrf: stepUp.token, password: op.password, code: await generate({ secret: op.secret, epoch: Math.floor(clock.now() / 1000) }), next: '/operator/operators' });
    const fresh0 = await s.form('/operator/operators'); // a new session id after the step-up: a new form token
    const done = await s.agent.post(`/operator/operators/${other.id}/deactivate`).type('form').send({ _csrf: fresh0.token });
    expect(done.status).to.equal(303);
    expect((await theirs.agent.get('/operator')).headers.location, 'their session ended at once').to.match(/^\/operator\/sign-in/);
    clock.advance(30_000);
    const again = browser(built.app);
    const p2 = await again.form('/operator/sign-in');
    const refused = await again.agent.post('/operator/sign-in').type('form').send({ _csrf: p2.token, email: 'other-op@platform.example', password: other.password, code: await generate({ secret: other.secret, epoch: Math.floor(clock.now() / 1000) }) });
    expect(refused.status, 'a deactivated operator cannot sign in').to.equal(401);

    const reactivated = await s.agent.post(`/operator/operators/${other.id}/reactivate`).type('form').send({ _csrf: fresh0.token });
    expect(reactivated.status).to.equal(200);
    const password = /One-time password<\/dt><dd><code class="secret">([^<]+)</.exec(reactivated.text)![1]!;
    const secret = /Authenticator key<\/dt><dd><code class="secret">([A-Z2-7]+)</.exec(reactivated.text)![1]!;
    clock.advance(30_000);
    const old = await again.agent.post('/operator/sign-in').type('form').send({ _csrf: p2.token, email: 'other-op@platform.example', password: other.password, code: await generate({ secret: other.secret, epoch: Math.floor(clock.now() / 1000) }) });
    expect(old.status, 'the old credentials are gone').to.equal(401);
    clock.advance(10_000);
    const fresh = await again.agent.post('/operator/sign-in').type('form').send({ _csrf: p2.token, email: 'other-op@platform.example', password, code: await generate({ secret, epoch: Math.floor(clock.now() / 1000) }) });
    expect(fresh.headers.location).to.equal('/operator');
    const trail = await t.current.owner('audit_events').where({ practice_id: INSTALLATION_ID, resource_id: other.id, actor_id: op.id }).pluck('action');
    expect(trail).to.include.members(['user_deactivate', 'session_revoke', 'mfa_destroy', 'user_reactivate']);
  });

  it('the quarterly operator access review: every operator listed; nobody decides their own line; another operator revokes (deactivating the account) and signs off', async () => {
    const stale = await createOperator(t.current.db.knex, fx.keyring.provider, { email: 'stale-op@platform.example', displayName: 'Stella Stale' });
    const reviewer = await createOperator(t.current.db.knex, fx.keyring.provider, { email: 'reviewer-op@platform.example', displayName: 'Rita Reviewer' });
    const ctx = { db: t.current.db, provider: fx.keyring.provider, keyring: fx.keyring, transport: new MemoryTransport(), files: fx.files, logger: createLogger('silent'), clock: clock.now };
    expect(await runJob(accessReviewsJob, ctx)).to.deep.include({ outcome: 'ok' });
    const s = await operatorSession();
    const reviews = await s.agent.get('/operator/access-reviews');
    const reviewId = /\/operator\/access-reviews\/([0-9a-f-]{36})/.exec(reviews.text)![1]!;
    const page = await s.form(`/operator/access-reviews/${reviewId}`);
    expect(page.text).to.include('Stella Stale').and.include('Olga Operator').and.include('privileged').and.include('Your own line: another operator decides it.');
    const items = await t.current.db.withPractice(INSTALLATION_ID, { kind: 'system', id: 'test' }, (trx) => trx('access_review_items').where({ review_id: reviewId }).select('id', 'user_id'));
    const line = (id: string) => items.find((i: { user_id: string }) => i.user_id === id).id;
    const early = await s.agent.post(`/operator/access-reviews/${reviewId}/sign-off`).type('form').send({ _csrf: page.token, name: 'Olga Operator' });
    expect(early.status).to.equal(409);
    for (const decision of ['keep', 'revoke']) {
      const own = await s.agent.post(`/operator/access-review-items/${line(op.id)}`).type('form').send({ _csrf: page.token, decision });
      expect(own.status, `${decision} one\u2019s own line`).to.equal(409);
      expect(own.text).to.include('cannot decide on your own access');
    }
    for (const i of items.filter((x: { user_id: string }) => x.user_id !== op.id)) {
      const decision = i.user_id === stale.id ? 'revoke' : 'keep';
      expect((await s.agent.post(`/operator/access-review-items/${i.id}`).type('form').send({ _csrf: page.token, decision })).status).to.equal(303);
    }
    expect(await t.current.owner('operators').where({ id: stale.id }).first('status')).to.deep.equal({ status: 'deactivated' });
    // The reviewer decides Olga's line, then the review can be signed off.
    clock.advance(30_000);
    const r = browser(built.app);
    const rp = await r.form('/operator/sign-in');
    await r.agent.post('/operator/sign-in').type('form').send({ _csrf: rp.token, email: 'reviewer-op@platform.example', password: reviewer.password, code: await generate({ secret: reviewer.secret, epoch: Math.floor(clock.now() / 1000) }) });
    const rr = await r.form(`/operator/access-reviews/${reviewId}`);
    expect((await r.agent.post(`/operator/access-review-items/${line(op.id)}`).type('form').send({ _csrf: rr.token, decision: 'keep' })).status).to.equal(303);
    expect((await s.agent.post(`/operator/access-reviews/${reviewId}/sign-off`).type('form').send({ _csrf: page.token, name: 'Olga Operator' })).status).to.equal(303);
    const signed = await t.current.db.withPractice(INSTALLATION_ID, { kind: 'system', id: 'test' }, (trx) => trx('access_reviews').where({ id: reviewId }).first('signed_off_name'));
    expect(signed.signed_off_name).to.equal('Olga Operator');
  });
});
