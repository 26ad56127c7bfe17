import { expect } from 'chai';
import type { Knex } from 'knex';
import { generate } from 'otplib';
import { ALERT_KINDS, ALERT_LABELS, raiseAlert, type AlertKind } from '../../src/alerts/alerts.js';
import { createLogger } from '../../src/config/logger.js';
import { INSTALLATION_ID } from '../../src/db/tenant.js';
import { outboxJob } from '../../src/jobs/outbox.job.js';
import { runJob, type Job, type JobContext } from '../../src/jobs/scheduler.js';
import { createOperator } from '../../src/services/operators/operators.service.js';
import { buildTestApp } from '../support/app.js';
import { browser } from '../support/browser.js';
import { buildCryptoFixture, type CryptoFixture } from '../support/crypto.js';
import { useTestDatabase } from '../support/db.js';
import { buildPatient, buildPractice, type BuiltPractice } from '../support/factories.js';
import { MemoryTransport } from '../support/mail.js';
import { rememberPhi } from '../support/phi-scan.js';
import { buildStaff, signIn, testClock, type BuiltStaff } from '../support/staff.js';

/** The kinds a practice's own events raise (the installation's are the operators'). */
const PRACTICE_KINDS: AlertKind[] = ['signin_lockout', 'link_lockout', 'break_glass', 'export_volume', 'review_overdue', 'accounts_disabled', 'audit_verification_failed'];

describe('security alerts reach people: page, banner, home count, email to the security contact, acknowledgement', () => {
  const t = useTestDatabase();
  const clock = testClock();
  let fx: CryptoFixture;
  let p: BuiltPractice;
  let owner: BuiltStaff;
  let manager: BuiltStaff;
  let desk: BuiltStaff;
  let built: ReturnType<typeof buildTestApp>;
  let ctx: JobContext;
  const mail = new MemoryTransport();
  const inPractice = <T>(fn: (trx: Knex.Transaction) => Promise<T>): Promise<T> => t.current.db.withPractice(p.id, { kind: 'system', id: 'test' }, fn);
  const run = (job: Job) => runJob(job, ctx);

  before(async () => {
    fx = await buildCryptoFixture(t.current);
    p = await buildPractice(t.current.owner, { slug: 'alerts-http', name: 'Bicuspid Bay Dental' });
    owner = await buildStaff(t.current, { keyring: fx.keyring, now: clock.now }, p, { owner: true, name: 'Olive Owner' });
    manager = await buildStaff(t.current, { keyring: fx.keyring, now: clock.now }, p, { roles: ['office_manager'], name: 'Max Manager' });
    desk = await buildStaff(t.current, { keyring: fx.keyring, now: clock.now }, p, { roles: ['front_desk'], name: 'Fran Desk' });
    built = buildTestApp(t.current, {}, { keyring: fx.keyring, clock: clock.now });
    ctx = { db: t.current.db, provider: fx.keyring.provider, keyring: fx.keyring, transport: mail, files: fx.files, publicUrl: new URL('https://enamel.example'), logger: createLogger('silent'), clock: clock.now };
    await inPractice((trx) => trx('practice_settings').update({ security_contact_user_id: manager.id }));
  });
  after(() => fx?.cleanup());

  it('a lockout from wrong passwords shows on the alerts page and as a banner on every page for alerts.read holders, not for front desk', async () => {
    const g = browser(built.app);
    const form = await g.form(`/p/${p.slug}/sign-in`);
    for (let i = 0; i < 5; i++) {
      await g.agent.post(`/p/${p.slug}/sign-in`).type('form').send({ _csrf: form.token, email: desk.email, password: `wrong password ${i}` });
      clock.advance(10_000);
    }
    const o = await signIn(built.app, p.slug, owner, clock);
    for (const path of [`/p/${p.slug}/home`, `/p/${p.slug}/patients`, `/p/${p.slug}/account`]) {
      const page = await o.agent.get(path);
      expect(page.text, path).to.include('One open security alert').and.include(`/p/${p.slug}/alerts?state=open`);
    }
    expect((await o.agent.get(`/p/${p.slug}/home`)).text).to.include('One open security alert.');
    const list = await o.agent.get(`/p/${p.slug}/alerts`);
    expect(list.status).to.equal(200);
    expect(list.text).to.include(ALERT_LABELS.signin_lockout).and.include('account Fran Desk');

    clock.advance(16 * 60_000); // the lock passes
    const d = await signIn(built.app, p.slug, desk, clock);
    const deskPage = await d.agent.get(`/p/${p.slug}/home`);
    expect(deskPage.text).to.not.include('security alert');
    expect((await d.agent.get(`/p/${p.slug}/alerts`)).status, 'no alerts.read, no page').to.equal(404);
  });

  it('every kind a practice raises is on the page and in the banner, and queues one email to the security contact carrying only the practice name, the kind and the link', async () => {
    const patient = await buildPatient(t.current.db, fx.keyring, p, { familyName: 'Alertpatient' });
    rememberPhi('Alertpatient');
    await run(outboxJob); // the lockout's email first
    mail.sent.length = 0;
    for (const kind of PRACTICE_KINDS.filter((k) => k !== 'signin_lockout')) {
      await inPractice((trx) => raiseAlert(trx, { practiceId: p.id, kind, severity: kind === 'audit_verification_failed' ? 'critical' : 'warning', details: { target_type: 'patient', target_id: patient.id } }));
    }
    const m = await signIn(built.app, p.slug, manager, clock);
    const list = await m.agent.get(`/p/${p.slug}/alerts`);
    for (const kind of PRACTICE_KINDS) expect(list.text, kind).to.include(ALERT_LABELS[kind]);
    expect(list.text).to.not.include('Alertpatient');
    const banner = await m.agent.get(`/p/${p.slug}/home`);
    expect(banner.text).to.include(`${PRACTICE_KINDS.length} open security alerts (one critical)`);

    const counts = await run(outboxJob);
    expect(counts).to.deep.include({ outcome: 'ok' });
    expect(mail.sent).to.have.length(PRACTICE_KINDS.length - 1);
    expect(new Set(mail.sent.map((e) => e.to))).to.deep.equal(new Set([manager.email]));
    for (const e of mail.sent) {
      expect(e.subject).to.equal('Security alert at Bicuspid Bay Dental');
      expect(e.text).to.include('https://enamel.example/p/alerts-http/alerts');
      expect(e.text).to.not.include(patient.id).and.not.include('Alertpatient').and.not.include(owner.email);
    }
    expect(mail.sent.map((e) => ALERT_KINDS.find((k) => e.text.includes(ALERT_LABELS[k])))).to.have.members(PRACTICE_KINDS.filter((k) => k !== 'signin_lockout'));
    // Told once: a second run sends nothing more.
    await run(outboxJob);
    expect(mail.sent).to.have.length(PRACTICE_KINDS.length - 1);
  });

  it('without a named contact, the owners are emailed; a deactivated contact does not receive alerts', async () => {
    await inPractice((trx) => trx('practice_settings').update({ security_contact_user_id: null }));
    mail.sent.length = 0;
    await inPractice((trx) => raiseAlert(trx, { practiceId: p.id, kind: 'break_glass', severity: 'warning' }));
    await run(outboxJob);
    expect(mail.sent.map((e) => e.to)).to.deep.equal([owner.email]);
    const former = await buildStaff(t.current, { keyring: fx.keyring, now: clock.now }, p, { roles: ['office_manager'] });
    await inPractice((trx) => trx('practice_settings').update({ security_contact_user_id: former.id }));
    await inPractice((trx) => trx('users').where({ id: former.id }).update({ status: 'deactivated' }));
    mail.sent.length = 0;
    await inPractice((trx) => raiseAlert(trx, { practiceId: p.id, kind: 'break_glass', severity: 'warning' }));
    await run(outboxJob);
    expect(mail.sent.map((e) => e.to), 'a deactivated contact is skipped: the owners hear of it').to.deep.equal([owner.email]);
    // An alert acknowledged before the job came round is not emailed: someone already knows.
    mail.sent.length = 0;
    const seen = await inPractice((trx) => raiseAlert(trx, { practiceId: p.id, kind: 'break_glass', severity: 'warning' }));
    await inPractice((trx) => trx('security_alerts').where({ id: seen }).update({ acknowledged_by: owner.id, acknowledged_at: new Date() }));
    await run(outboxJob);
    expect(mail.sent).to.have.length(0);
    expect(await inPractice((trx) => trx('security_alerts').where({ id: seen }).first('notified_at'))).to.not.deep.equal({ notified_at: null });
    await inPractice((trx) => trx('practice_settings').update({ security_contact_user_id: manager.id }));
  });

  it('acknowledging needs a note, keeps it encrypted, records who and when, is audited; the banner goes when nothing is open', async () => {
    const o = await signIn(built.app, p.slug, owner, clock);
    const page = await o.form(`/p/${p.slug}/alerts`);
    const ids = await inPractice((trx) => trx('security_alerts').whereNull('acknowledged_at').pluck('id'));
    expect(ids.length).to.be.greaterThan(1);
    const empty = await o.agent.post(`/p/${p.slug}/alerts/${ids[0]}/acknowledge`).type('form').send({ _csrf: page.token, note: ' ' });
    expect(empty.status).to.equal(400);
    expect(empty.text).to.include('Say in a few words what you found or did').and.include('aria-describedby="note-err-');
    expect(await inPractice((trx) => trx('security_alerts').where({ id: ids[0] }).first('acknowledged_at'))).to.deep.equal({ acknowledged_at: null });
    const note = 'Spoke with the user; she had forgotten her password';
    for (const id of ids) {
      const res = await o.agent.post(`/p/${p.slug}/alerts/${id}/acknowledge`).type('form').send({ _csrf: page.token, note });
      expect(res.status).to.equal(303);
    }
    const again = await o.agent.post(`/p/${p.slug}/alerts/${ids[0]}/acknowledge`).type('form').send({ _csrf: page.token, note });
    expect(again.status).to.equal(409);
    const row = await inPractice((trx) => trx('security_alerts').where({ id: ids[0] }).first('acknowledged_by', 'acknowledged_at', 'acknowledged_note'));
    expect(row.acknowledged_by).to.equal(owner.id);
    expect(row.acknowledged_note).to.be.instanceOf(Buffer);
    expect(row.acknowledged_note.toString('latin1')).to.not.include('forgotten');
    const audited = await t.current.owner('audit_events').where({ practice_id: p.id, action: 'alert_acknowledge', actor_id: owner.id }).pluck('resource_id');
    expect(audited).to.have.members(ids);
    const done = await o.agent.get(`/p/${p.slug}/alerts?state=acknowledged&kind=break_glass`);
    expect(done.text).to.include('Olive Owner').and.include(note);
    expect((await o.agent.get(`/p/${p.slug}/home`)).text).to.include('No open security alerts.').and.not.include('class="alert-banner');
    // Filters are kinds and severities only; a made-up value shows everything, not an error.
    expect((await o.agent.get(`/p/${p.slug}/alerts?state=open&kind=nonsense&severity=%3Cscript%3E`)).status).to.equal(200);
  });

  it('export volume: one person passing the practice’s hourly threshold raises one alert', async () => {
    await inPractice((trx) => trx('practice_settings').update({ export_volume_threshold: 5 }));
    const o = await signIn(built.app, p.slug, owner, clock);
    const form = await o.form(`/p/${p.slug}/audit`);
    for (let i = 0; i < 5; i++) expect((await o.agent.post(`/p/${p.slug}/audit/export`).type('form').send({ _csrf: form.token })).status).to.equal(200);
    const volume = () => inPractice((trx) => trx('security_alerts').where({ kind: 'export_volume' }).whereRaw("details->>'target_id' = ?", [owner.id]).select('details'));
    expect(await volume(), 'at the threshold: no alert yet').to.have.length(0);
    await o.agent.post(`/p/${p.slug}/audit/export`).type('form').send({ _csrf: form.token });
    expect((await volume()).map((a: { details: { count: number } }) => a.details.count)).to.deep.equal([6]);
    await o.agent.post(`/p/${p.slug}/audit/export`).type('form').send({ _csrf: form.token });
    expect(await volume(), 'once an hour per person').to.have.length(1);
  });
});

describe('installation alerts on the operator console', () => {
  const t = useTestDatabase();
  const clock = testClock();
  let fx: CryptoFixture;
  let built: ReturnType<typeof buildTestApp>;
  let op: { id: string; password: string; secret: string };

  before(async () => {
    fx = await buildCryptoFixture(t.current);
    built = buildTestApp(t.current, {}, { keyring: fx.keyring, clock: clock.now });
    op = await createOperator(t.current.db.knex, fx.keyring.provider, { email: 'alert-ops@platform.example', displayName: 'Alma Operator' });
  });
  after(() => fx?.cleanup());

  it('a failing job raises one installation alert (not one per run), shown with a banner; acknowledging is audited in the installation chain', async () => {
    const failing: Job = { name: 'always-fails', schedule: '* * * * *', run: async () => { throw new TypeError('boom'); } };
    const ctx: JobContext = { db: t.current.db, provider: fx.keyring.provider, keyring: fx.keyring, transport: new MemoryTransport(), files: fx.files, logger: createLogger('silent') };
    expect((await runJob(failing, ctx)).outcome).to.equal('failed');
    expect((await runJob(failing, ctx)).outcome).to.equal('failed');
    const alerts = await t.current.db.withPractice(INSTALLATION_ID, { kind: 'system', id: 'test' }, (trx) => trx('security_alerts').where({ kind: 'job_failed' }).select('id', 'details'));
    expect(alerts.map((a: { details: { job: string } }) => a.details.job)).to.deep.equal(['always-fails']);

    clock.advance(30_000);
    const b = browser(built.app);
    const page = await b.form('/operator/sign-in');
    await b.agent.post('/operator/sign-in').type('form').send({ _csrf: page.token, email: 'alert-ops@platform.example', password: op.password, code: await generate({ secret: op.secret, epoch: Math.floor(clock.now() / 1000) }) });
    const home = await b.agent.get('/operator');
    expect(home.text).to.include('One open security alert').and.include('/operator/alerts');
    const list = await b.form('/operator/alerts');
    expect(list.text).to.include(ALERT_LABELS.job_failed).and.include('job always-fails');
    const ack = await b.agent.post(`/operator/alerts/${alerts[0].id}/acknowledge`).type('form').send({ _csrf: list.token, note: 'Fixed the job configuration' });
    expect(ack.status).to.equal(303);
    expect((await b.agent.get('/operator')).text).to.not.include('class="alert-banner');
    const audited = await t.current.owner('audit_events').where({ practice_id: INSTALLATION_ID, action: 'alert_acknowledge' }).select('actor_type', 'actor_id');
    expect(audited).to.deep.equal([{ actor_type: 'operator', actor_id: op.id }]);
    // Staff of a practice never see the installation's alerts.
    const practice = await buildPractice(t.current.owner, { slug: 'no-install-alerts' });
    const owner = await buildStaff(t.current, { keyring: fx.keyring, now: clock.now }, practice, { owner: true });
    const s = await signIn(built.app, practice.slug, owner, clock);
    expect((await s.agent.get(`/p/${practice.slug}/alerts?state=all`)).text).to.not.include('always-fails');
  });

  it('an outbox failing for an hour raises an installation alert naming the practice', async () => {
    const practice = await buildPractice(t.current.owner, { slug: 'outbox-failing' });
    const mail = new MemoryTransport();
    mail.failNext = 100;
    const ctx: JobContext = { db: t.current.db, provider: fx.keyring.provider, keyring: fx.keyring, transport: mail, files: fx.files, publicUrl: new URL('https://enamel.example'), logger: createLogger('silent'), clock: clock.now };
    const { enqueue } = await import('../../src/messaging/outbox.js');
    await t.current.db.withPractice(practice.id, { kind: 'system', id: 'test' }, (trx) => enqueue(trx, fx.keyring, { practiceId: practice.id, template: 'staff_password_reset', to: 'someone@clinic.example', params: { practiceName: 'Outbox Failing Dental', link: 'https://enamel.example/x' } }));
    const first = await runJob(outboxJob, ctx);
    expect(first).to.deep.include({ outcome: 'ok' });
    const installationAlerts = () => t.current.db.withPractice(INSTALLATION_ID, { kind: 'system', id: 'test' }, (trx) => trx('security_alerts').where({ kind: 'outbox_failing' }).select('details'));
    expect(await installationAlerts(), 'not yet an hour').to.have.length(0);
    clock.advance(61 * 60_000);
    await runJob(outboxJob, ctx);
    await runJob(outboxJob, ctx);
    expect((await installationAlerts()).map((a: { details: { target_id: string } }) => a.details.target_id)).to.deep.equal([practice.id]);
  });
});
