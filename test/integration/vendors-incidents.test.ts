import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import { z } from 'zod';
import { audit } from '../../src/audit/record.js';
import { requiredNotices } from '../../src/compliance/breach-deadlines.js';
import { configuredIntegrations, templatesCarryNoPhi } from '../../src/compliance/coverage.js';
import { INSTALLATION_ID } from '../../src/db/tenant.js';
import { ALL_PERMISSIONS } from '../../src/permissions.js';
import { AccessDenied, type StaffActor } from '../../src/policies/index.js';
import { addPatientsFromAuditLog, alertIncidentDeadlines, assessIncident, completeNotice, incidentLetters, incidentPage, openIncident } from '../../src/services/incidents/incidents.service.js';
import { checkCoverage, installationRegistry, practiceRegistry, saveInstallationVendor, savePracticeVendor, type VendorInput } from '../../src/services/vendors/vendors.service.js';
import { testConfig } from '../support/app.js';
import { buildCryptoFixture, type CryptoFixture } from '../support/crypto.js';
import { useTestDatabase } from '../support/db.js';
import { buildPatient, buildPractice, type BuiltPractice } from '../support/factories.js';
import { buildStaff } from '../support/staff.js';

const DAY = 86_400_000;

describe('business associates and incidents', function () {
  this.timeout(120_000);
  const t = useTestDatabase();
  let fx: CryptoFixture;
  let p: BuiltPractice;
  let owner: StaffActor;
  let desk: StaffActor;
  const now = Date.UTC(2026, 2, 10, 15);
  const meta = () => ({ ip: '127.0.0.1', requestId: 'req-incidents-1', now: new Date(now) });
  const deps = () => ({ db: t.current.db, keyring: fx.keyring });
  const op = { kind: 'operator' as const, id: randomUUID(), email: 'op@platform.example', displayName: 'Op' };
  const actorFor = (id: string, permissions: readonly string[], isOwner: boolean): StaffActor => ({ kind: 'user', id, practiceId: p.id, slug: p.slug, displayName: 'X', permissions: new Set(permissions), locations: 'all', isOwner, authAt: now }) as StaffActor;
  const alerts = (practiceId: string, kind: string) => t.current.db.withPractice(practiceId, { kind: 'system', id: 'test' }, (trx) => trx('security_alerts').where({ kind }).select('details'));
  const config = testConfig({ MAIL_TRANSPORT: 'smtp', SMTP_URL: 'smtps://user:secret@mail.example.net:465', SMS_TRANSPORT: 'http', SMS_API_URL: 'https://api.sms.example', SMS_ACCOUNT_SID: 'AC12345678', SMS_AUTH_TOKEN: 'token-0123456789abcdef', SMS_FROM: '+15551234567', DATABASE_URL: 'postgres://app:pw@db.internal.example:5432/enamel?sslmode=require' });
  const integrations = configuredIntegrations(config);
  const vendor = (o: Partial<VendorInput>): VendorInput => ({ name: 'Vendor', service: 'Service', integration: null, dataSeen: 'phi', agreement: 'none', signedOn: null, expiresOn: null, reviewOn: null, notes: '', listed: true, ...o });

  before(async () => {
    fx = await buildCryptoFixture(t.current);
    p = await buildPractice(t.current.owner, { slug: 'incidents' });
    const o = await buildStaff(t.current, { keyring: fx.keyring, now: () => now }, p, { owner: true });
    const d = await buildStaff(t.current, { keyring: fx.keyring, now: () => now }, p, { roles: ['front_desk'] });
    owner = actorFor(o.id, ALL_PERMISSIONS, true);
    desk = actorFor(d.id, ['patients.read', 'patients.write'], false);
  });
  after(() => fx.cleanup());

  it('the templates’ schemas decide “no PHI by design”: today’s carry only the practice name, a link and an alert kind; one with a patient’s name would not pass', () => {
    expect(templatesCarryNoPhi('email')).to.deep.equal({ ok: true, offending: [] });
    expect(templatesCarryNoPhi('sms')).to.deep.equal({ ok: true, offending: [] });
    const leaky = { reminder: { channel: 'sms' as const, params: z.strictObject({ practiceName: z.string(), patientName: z.string(), link: z.url() }) } };
    expect(templatesCarryNoPhi('sms', leaky)).to.deep.equal({ ok: false, offending: ['reminder.patientName'] });
    const open = { reminder: { channel: 'sms' as const, params: z.object({ practiceName: z.string() }).passthrough() } };
    expect(templatesCarryNoPhi('sms', open).ok, 'an open schema is not a closed list').to.equal(false);
    expect(configuredIntegrations(config, leaky).find((i) => i.integration === 'sms')).to.deep.include({ phi: true });
  });

  it('coverage: SMTP and an SMS API are “no PHI by design”; the database and file store without agreements are missing → one alert; an executed agreement clears it; expiring raises it again on its date', async () => {
    const first = await installationRegistry(deps(), op, integrations, new Date(now));
    const state = (lines: typeof first.coverage) => Object.fromEntries(lines.map((l) => [l.key, l.state]));
    expect(state(first.coverage)).to.deep.equal({ hosting: 'missing', database: 'missing', file_store: 'missing', backup_target: 'missing', email: 'no_phi', sms: 'no_phi' });
    expect(first.coverage.find((l) => l.key === 'database')!.integration!.where, 'the host, never the credentials').to.equal('db.internal.example');
    expect(first.coverage.find((l) => l.key === 'email')!.integration!.where).to.equal('mail.example.net');

    expect((await checkCoverage(t.current.db, integrations, [p.id], new Date(now))).alerted).to.equal(1);
    expect(await alerts(INSTALLATION_ID, 'baa_missing')).to.deep.equal([{ details: { count: 4 } }]);
    await checkCoverage(t.current.db, integrations, [p.id], new Date(now + DAY));
    expect(await alerts(INSTALLATION_ID, 'baa_missing'), 'no new alert while the same gaps stay').to.have.length(1);

    for (const integration of ['hosting', 'database', 'file_store', 'backup_target'] as const) {
      // The server is the practice's own (self-hosted): no business associate, and the entry says so.
      const r = await saveInstallationVendor(deps(), op, null, integration === 'hosting' ? vendor({ name: 'Our own server room', integration, agreement: 'not_required' }) : vendor({ name: `Vendor ${integration}`, integration, agreement: 'executed', signedOn: '2026-01-05', expiresOn: integration === 'database' ? '2026-03-20' : null }), meta());
      expect(r.ok, integration).to.equal(true);
    }
    expect(state((await installationRegistry(deps(), op, integrations, new Date(now))).coverage)).to.deep.include({ hosting: 'own_system', database: 'covered', file_store: 'covered' });
    expect(await saveInstallationVendor(deps(), op, null, vendor({ name: 'Second DB', integration: 'database', agreement: 'executed', signedOn: '2026-01-05' }), meta()), 'one entry per integration').to.deep.include({ ok: false, field: 'integration' });
    expect((await checkCoverage(t.current.db, integrations, [p.id], new Date(now + DAY))).gaps).to.equal(0);
    // The database agreement ends on 2026-03-20: that morning's check finds it expired and alerts again.
    const expiry = Date.UTC(2026, 2, 20, 6);
    expect(state((await installationRegistry(deps(), op, integrations, new Date(expiry))).coverage)).to.deep.include({ database: 'expired' });
    await checkCoverage(t.current.db, integrations, [p.id], new Date(expiry));
    expect(await alerts(INSTALLATION_ID, 'baa_missing')).to.deep.equal([{ details: { count: 4 } }, { details: { count: 1 } }]);
    // The owner's page shows the installation's map too, read-only.
    const page = await practiceRegistry(deps(), owner, integrations, new Date(expiry));
    expect(page.installation.find((l) => l.key === 'database')!.state).to.equal('expired');
    expect(await practiceRegistry(deps(), desk, integrations, new Date(now)).catch((e: unknown) => e)).to.be.instanceOf(AccessDenied);
  });

  it('a practice’s own vendor that sees PHI without an agreement alerts the practice; executed clears it; bad dates are refused', async () => {
    expect(await savePracticeVendor(deps(), owner, null, vendor({ name: 'Lab', agreement: 'executed' }), meta())).to.deep.include({ ok: false, field: 'signedOn' });
    expect(await savePracticeVendor(deps(), owner, null, vendor({ name: 'Lab', agreement: 'executed', signedOn: '2026-02-01', expiresOn: '2026-01-01' }), meta())).to.deep.include({ ok: false, field: 'expiresOn' });
    const lab = await savePracticeVendor(deps(), owner, null, vendor({ name: 'Bright Smile Lab', service: 'Crowns', agreement: 'requested' }), meta());
    if (!lab.ok) throw new Error(lab.error);
    await checkCoverage(t.current.db, integrations, [p.id], new Date(now));
    expect(await alerts(p.id, 'baa_missing')).to.deep.equal([{ details: { count: 1 } }]);
    await savePracticeVendor(deps(), owner, lab.value, vendor({ name: 'Bright Smile Lab', service: 'Crowns', agreement: 'executed', signedOn: '2026-03-01' }), meta());
    expect((await practiceRegistry(deps(), owner, integrations, new Date(now))).coverage.map((l) => l.state)).to.deep.equal(['covered']);
  });

  it('deadlines: 501 in one state → individuals, media and HHS within 60 days; 20 → HHS 60 days after the year ends; the 72-hour business-associate clock', () => {
    const discoveredAt = new Date(Date.UTC(2026, 2, 10, 15));
    const due = (n: ReturnType<typeof requiredNotices>) => Object.fromEntries(n.map((x) => [x.kind, x.dueAt.toISOString()]));
    const in60 = new Date(discoveredAt.getTime() + 60 * DAY).toISOString();
    expect(due(requiredNotices({ discoveredAt, byState: new Map([['IL', 501]]), outcome: 'breach', businessAssociate: false, baNoticeHours: null }))).to.deep.equal({ individuals: in60, media: in60, hhs: in60 });
    expect(due(requiredNotices({ discoveredAt, byState: new Map([['IL', 300], ['WI', 300]]), outcome: 'breach', businessAssociate: false, baNoticeHours: null })), '600 but no state over 500: no media').to.deep.equal({ individuals: in60, hhs: in60 });
    expect(due(requiredNotices({ discoveredAt, byState: new Map([['IL', 20]]), outcome: 'breach', businessAssociate: false, baNoticeHours: null }))).to.deep.equal({ individuals: in60, hhs: new Date(Date.UTC(2026, 11, 31, 23, 59, 59) + 60 * DAY).toISOString() });
    expect(due(requiredNotices({ discoveredAt, byState: new Map([['IL', 20]]), outcome: 'not_breach', businessAssociate: true, baNoticeHours: 72 }))).to.deep.equal({ ba_notice: new Date(discoveredAt.getTime() + 72 * 3_600_000).toISOString() });
  });

  it('an incident: 501 affected patients in one state assessed as a breach get media and HHS tasks due in 60 days; the per-practice 72-hour clock makes the associate’s task; overdue notices alert once', async () => {
    await t.current.db.withPractice(p.id, { kind: 'system', id: 'test' }, (trx) => trx('practice_settings').update({ ba_notice_hours: 72 }));
    const ba = await savePracticeVendor(deps(), owner, null, vendor({ name: 'Cloud IT', service: 'IT support', agreement: 'executed', signedOn: '2026-01-01' }), meta());
    if (!ba.ok) throw new Error(ba.error);
    const discoveredAt = new Date(now - DAY);
    const opened = await openIncident(deps(), owner, { kind: 'hacking', discoveredAt, occurredAt: null, vendorId: ba.value, systems: ['records'], summary: 'The IT firm’s remote tool was used by someone else', reportedBy: 'Cloud IT' }, meta());
    if (!opened.ok) throw new Error(opened.error);
    expect((await incidentPage(deps(), owner, opened.value, meta())).tasks.map((x) => [x.kind, x.dueAt.getTime() - discoveredAt.getTime()])).to.deep.equal([['ba_notice', 72 * 3_600_000]]);
    // 501 patients, each opened by one account in the window (the audit log is the source).
    const intruder = await buildStaff(t.current, { keyring: fx.keyring, now: () => now }, p, { roles: ['provider'] });
    const ids: string[] = [];
    for (let k = 0; k < 501; k++) ids.push((await buildPatient(t.current.db, fx.keyring, p)).id);
    await t.current.db.withPractice(p.id, { kind: 'system', id: 'test' }, async (trx) => {
      for (const id of ids) await audit.record(trx, { practiceId: p.id, actor: { kind: 'user', id: intruder.id }, action: 'view', resource: { type: 'patient', id }, patientId: id, outcome: 'allowed' });
    });
    // The audit log's own clock is the real one (occurred_at is the database's time).
    const added = await addPatientsFromAuditLog(deps(), owner, opened.value, { userId: intruder.id, from: new Date(Date.now() - 3_600_000), to: new Date(Date.now() + 3_600_000) }, meta());
    expect(added).to.deep.equal({ ok: true, value: { found: 501, added: 501 } });
    await assessIncident(deps(), owner, opened.value, { nature: 'Names, dates of birth, treatment notes', recipient: 'Unknown', acquired: 'Records were viewed', mitigation: 'Access revoked; passwords reset', advice: 'Watch your insurer’s statements', outcome: 'breach' }, meta());
    const page = await incidentPage(deps(), owner, opened.value, meta());
    expect(page.byState).to.deep.equal([{ state: 'IL', count: 501 }]);
    const dueIn = Object.fromEntries(page.tasks.map((x) => [x.kind, x.dueAt.getTime() - discoveredAt.getTime()]));
    expect(dueIn).to.deep.equal({ ba_notice: 72 * 3_600_000, individuals: 60 * DAY, media: 60 * DAY, hhs: 60 * DAY });
    // The associate's notice is overdue 72 hours after discovery: one alert, then not again.
    expect(await alertIncidentDeadlines(t.current.db, p.id, new Date(discoveredAt.getTime() + 73 * 3_600_000))).to.equal(1);
    expect(await alertIncidentDeadlines(t.current.db, p.id, new Date(discoveredAt.getTime() + 74 * 3_600_000))).to.equal(0);
    const baTask = page.tasks.find((x) => x.kind === 'ba_notice')!;
    expect(await completeNotice(deps(), owner, baTask.id, { doneAt: new Date(now), evidence: 'Email from Cloud IT, ref 4411' }, meta())).to.deep.include({ ok: true });
    expect(await completeNotice(deps(), owner, baTask.id, { doneAt: new Date(now), evidence: 'again' }, meta())).to.deep.include({ ok: false });
    // The three breach notices, 53 days on, are due within a week: one alert for the three.
    expect(await alertIncidentDeadlines(t.current.db, p.id, new Date(discoveredAt.getTime() + 54 * DAY))).to.equal(3);
    expect(await alerts(p.id, 'incident_deadline')).to.deep.equal([{ details: { count: 1 } }, { details: { count: 3 } }]);
  });

  it('an incident of 20 patients assessed as a breach: the HHS task is due 60 days after the year ends; letters name each patient, each print audited', async () => {
    const opened = await openIncident(deps(), owner, { kind: 'misdirected_message', discoveredAt: new Date(now), occurredAt: new Date(now - DAY), vendorId: null, systems: ['email'], summary: 'A spreadsheet emailed to the wrong address', reportedBy: '' }, meta());
    if (!opened.ok) throw new Error(opened.error);
    const sender = await buildStaff(t.current, { keyring: fx.keyring, now: () => now }, p, { roles: ['front_desk'] });
    const ids: string[] = [];
    for (let k = 0; k < 20; k++) ids.push((await buildPatient(t.current.db, fx.keyring, p, { familyName: `Letterperson${k}` })).id);
    await t.current.db.withPractice(p.id, { kind: 'system', id: 'test' }, async (trx) => {
      for (const id of ids) await audit.record(trx, { practiceId: p.id, actor: { kind: 'user', id: sender.id }, action: 'view', resource: { type: 'patient', id }, patientId: id, outcome: 'allowed' });
    });
    await addPatientsFromAuditLog(deps(), owner, opened.value, { userId: sender.id, from: new Date(Date.now() - 3_600_000), to: new Date(Date.now() + 3_600_000) }, meta());
    await assessIncident(deps(), owner, opened.value, { nature: 'Names and phone numbers', recipient: 'Another patient', acquired: 'Opened', mitigation: 'Recipient deleted it', advice: 'Nothing you need to do', outcome: 'breach' }, meta());
    const page = await incidentPage(deps(), owner, opened.value, meta());
    expect(Object.fromEntries(page.tasks.map((x) => [x.kind, x.dueAt.toISOString()]))).to.deep.equal({ individuals: new Date(now + 60 * DAY).toISOString(), hhs: new Date(Date.UTC(2026, 11, 31, 23, 59, 59) + 60 * DAY).toISOString() });
    const letters = await incidentLetters(deps(), owner, opened.value, meta());
    expect(letters.letters.map((l) => l.name).sort()).to.deep.equal(ids.map((_, k) => `Pat Letterperson${k}`).sort());
    expect(letters.letters[0]!.address).to.deep.equal(['12 Example Street', 'Springfield, IL 00000']);
    const printed = await t.current.db.withPractice(p.id, { kind: 'system', id: 'test' }, (trx) => trx('audit_events').where({ action: 'print', resource_type: 'incident', resource_id: opened.value }).pluck('patient_id'));
    expect(printed.sort()).to.deep.equal([...ids].sort());
  });

  it('the affected-patient list from the audit log is exactly the patients that account touched in the window; producing it is audited; only incidents.manage', async () => {
    const opened = await openIncident(deps(), owner, { kind: 'lost_device', discoveredAt: new Date(now), occurredAt: null, vendorId: null, systems: ['device'], summary: 'A laptop left on a train', reportedBy: 'Dr A' }, meta());
    if (!opened.ok) throw new Error(opened.error);
    const user = await buildStaff(t.current, { keyring: fx.keyring, now: () => now }, p, { roles: ['provider'] });
    const other = await buildStaff(t.current, { keyring: fx.keyring, now: () => now }, p, { roles: ['provider'] });
    const [inside, before, afterWindow, byOther] = [await buildPatient(t.current.db, fx.keyring, p), await buildPatient(t.current.db, fx.keyring, p), await buildPatient(t.current.db, fx.keyring, p), await buildPatient(t.current.db, fx.keyring, p)];
    // The audit log's clock is the database's: the window's ends are read from it between the events.
    const view = (patientId: string, actorId: string) => t.current.db.withPractice(p.id, { kind: 'system', id: 'test' }, (trx) => audit.record(trx, { practiceId: p.id, actor: { kind: 'user', id: actorId }, action: 'view', resource: { type: 'patient', id: patientId }, patientId, outcome: 'allowed' }));
    // A window edge at a whole millisecond (a Date's precision) that the database clock has passed: events before it are before it, events after after it.
    const dbNow = async () => {
      const edge = new Date(Math.ceil(Number((await t.current.owner.raw<{ rows: { ms: string }[] }>("SELECT extract(epoch FROM clock_timestamp()) * 1000 AS ms")).rows[0]!.ms)) + 1);
      while (Number((await t.current.owner.raw<{ rows: { ms: string }[] }>("SELECT extract(epoch FROM clock_timestamp()) * 1000 AS ms")).rows[0]!.ms) <= edge.getTime());
      return edge;
    };
    await view(before.id, user.id);
    const t1 = await dbNow();
    await view(inside.id, user.id);
    await view(inside.id, user.id);
    await view(byOther.id, other.id);
    const t2 = await dbNow();
    await view(afterWindow.id, user.id);
    const expected = await t.current.db.withPractice(p.id, { kind: 'system', id: 'test' }, (trx) =>
      trx('audit_events').where({ actor_type: 'user', actor_id: user.id }).whereNotNull('patient_id').where('occurred_at', '>=', t1).where('occurred_at', '<', t2).distinct('patient_id').pluck('patient_id'));
    const r = await addPatientsFromAuditLog(deps(), owner, opened.value, { userId: user.id, from: t1, to: t2 }, meta());
    expect(r).to.deep.equal({ ok: true, value: { found: expected.length, added: expected.length } });
    const listed = await t.current.db.withPractice(p.id, { kind: 'system', id: 'test' }, (trx) => trx('incident_patients').where({ incident_id: opened.value }).pluck('patient_id'));
    expect(listed.sort()).to.deep.equal([...expected].sort());
    const searches = await t.current.db.withPractice(p.id, { kind: 'system', id: 'test' }, (trx) => trx('audit_events').where({ action: 'search', resource_type: 'audit_log', actor_id: owner.id }).pluck('details'));
    expect(searches).to.deep.include({ count: expected.length, target_type: 'incident', target_id: opened.value });
    expect(await addPatientsFromAuditLog(deps(), desk, opened.value, { userId: user.id, from: t1, to: t2 }, meta()).catch((e: unknown) => e)).to.be.instanceOf(AccessDenied);
    expect(listed, `the one patient inside the window (before ${before.id}, after ${afterWindow.id}, other ${byOther.id}; t1 ${t1.toISOString()} t2 ${t2.toISOString()})`).to.deep.equal([inside.id]);
  });
});
