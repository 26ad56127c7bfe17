import { expect } from 'chai';
import { createLogger } from '../../src/config/logger.js';
import { patientRightsJob } from '../../src/jobs/patient-rights.job.js';
import { runJob } from '../../src/jobs/scheduler.js';
import { ALL_PERMISSIONS } from '../../src/permissions.js';
import { AccessDenied, type StaffActor } from '../../src/policies/index.js';
import { readFileFully } from '../../src/crypto/encrypted-files.js';
import { openExportArchive, runExportStep, startExport } from '../../src/services/exports/exports.service.js';
import { accountingOfDisclosures, closeRequest, dueDate, extendRequest, recordDisclosure, recordRequest, requestsRegister, rightsDue } from '../../src/services/rights/rights.service.js';
import { buildCryptoFixture, type CryptoFixture } from '../support/crypto.js';
import { useTestDatabase } from '../support/db.js';
import { buildPatient, buildPractice, type BuiltPractice } from '../support/factories.js';
import { MemoryTransport } from '../support/mail.js';
import { buildStaff } from '../support/staff.js';
import { createHash, randomUUID } from 'node:crypto';
import { TextWriter, Uint8ArrayReader, ZipReader, configure } from '@zip.js/zip.js';
import { PracticeCrypto } from '../../src/crypto/encrypted-columns.js';
import { noteSecrets } from '../../src/queries/notes.queries.js';
import { planSecrets } from '../../src/queries/plans.queries.js';
import { notesPage } from '../../src/services/patients/notes.service.js';
import { printPlan } from '../../src/services/patients/plans.service.js';
import { accessReportForLink, addDisagreement, decideAmendment, requestAmendment } from '../../src/services/rights/rights.service.js';
import { audit } from '../../src/audit/record.js';

configure({ useWebWorkers: false });
import { createLink } from '../../src/services/links/links.service.js';
import { deliverDue } from '../../src/messaging/outbox.js';
import { endPatientRestriction, linkAmendmentPage, recordRestriction, requestAmendmentByLink } from '../../src/services/rights/rights.service.js';
import { linkExportState, openLinkExportArchive, startLinkExport } from '../../src/services/exports/exports.service.js';
import { showPatient } from '../../src/services/patients/patients.service.js';

const DAY = 86_400_000;

/** Patients' rights (issue 18, first part): the register's due dates, the one extension, the overdue alert; disclosures and the accounting. */
describe('patient rights: requests register and the accounting of disclosures', function () {
  this.timeout(60_000);
  const t = useTestDatabase();
  let fx: CryptoFixture;
  let p: BuiltPractice;
  let actor: StaffActor;
  let desk: StaffActor;
  let patientId: string;
  let otherPatientId: string;
  let now = Date.UTC(2026, 11, 1, 15);
  const meta = () => ({ ip: '127.0.0.1', requestId: 'req-rights-1', now: new Date(now) });
  const deps = () => ({ db: t.current.db, keyring: fx.keyring, files: fx.files });
  const actorFor = (id: string, permissions: readonly string[], isOwner: boolean): StaffActor => ({ kind: 'user', id, practiceId: p.id, slug: p.slug, displayName: 'X', permissions: new Set(permissions), locations: 'all', isOwner, authAt: now }) as StaffActor;

  before(async () => {
    fx = await buildCryptoFixture(t.current);
    p = await buildPractice(t.current.owner, { slug: 'rights' });
    const owner = await buildStaff(t.current, { keyring: fx.keyring, now: () => now }, p, { owner: true });
    const frontDesk = await buildStaff(t.current, { keyring: fx.keyring, now: () => now }, p, { roles: ['front_desk'] });
    actor = actorFor(owner.id, ALL_PERMISSIONS, true);
    desk = actorFor(frontDesk.id, ['patients.read', 'patients.write'], false);
    patientId = (await buildPatient(t.current.db, fx.keyring, p, { familyName: 'Rightsholder' })).id;
    otherPatientId = (await buildPatient(t.current.db, fx.keyring, p)).id;
  });
  after(() => fx.cleanup());
  const loadChart = async (id: string) => (await showPatient(deps() as never, actor, id, meta())) as { restrictions?: unknown };

  it('due dates: 30 days for access, 60 for an amendment or an accounting; one 30-day extension with a reason and a notice; never a second', async () => {
    const received = new Date(Date.UTC(2026, 10, 20));
    expect(dueDate('access', received).toISOString()).to.equal('2026-12-20T00:00:00.000Z');
    expect(dueDate('amendment', received).toISOString()).to.equal('2027-01-19T00:00:00.000Z');
    expect(dueDate('accounting', received).toISOString()).to.equal('2027-01-19T00:00:00.000Z');
    const made = await recordRequest(deps(), actor, patientId, { kind: 'access', receivedVia: 'phone', receivedAt: received, details: 'Wants a copy of the X-rays' }, meta());
    expect(made.ok).to.equal(true);
    const id = (made as { ok: true; value: string }).value;
    const late = await extendRequest(deps(), actor, id, { reason: 'Records in storage', noticeAt: new Date(Date.UTC(2026, 11, 21)) }, meta());
    expect(late).to.deep.include({ ok: false, field: 'noticeAt' });
    const ok = await extendRequest(deps(), actor, id, { reason: 'Records in storage', noticeAt: new Date(Date.UTC(2026, 11, 1)) }, meta());
    expect(ok.ok).to.equal(true);
    const twice = await extendRequest(deps(), actor, id, { reason: 'Again', noticeAt: new Date(Date.UTC(2026, 11, 1)) }, meta());
    expect(twice).to.deep.include({ ok: false });
    const { open } = await requestsRegister(deps(), actor, meta());
    const r = open.find((x) => x.id === id)!;
    expect(r.dueAt.toISOString()).to.equal('2027-01-19T00:00:00.000Z');
    expect(r.extended).to.deep.include({ reason: 'Records in storage' });
    expect(r.patientName).to.include('Rightsholder');
  });

  it('the overdue alert: once the due date passes unanswered, one alert (not one a day); the home counts say overdue and due soon', async () => {
    const received = new Date(now - 25 * DAY);
    await recordRequest(deps(), actor, otherPatientId, { kind: 'restriction', receivedVia: 'in_person', receivedAt: received, details: 'No calls at work' }, meta());
    expect(await rightsDue(deps(), actor, new Date(now))).to.deep.equal({ overdue: 0, soon: 1 });
    const ctx = { db: t.current.db, provider: fx.keyring.provider, keyring: fx.keyring, transport: new MemoryTransport(), files: fx.files, logger: createLogger('silent'), clock: () => now };
    expect((await runJob(patientRightsJob, ctx)).outcome).to.equal('ok');
    const alerts = () => t.current.db.withPractice(p.id, { kind: 'system', id: 'test' }, (trx) => trx('security_alerts').where({ kind: 'rights_request_overdue' }).count<{ n: string }[]>({ n: '*' })).then((x) => Number(x[0]!.n));
    expect(await alerts()).to.equal(0);
    now += 6 * DAY;
    expect(await rightsDue(deps(), actor, new Date(now))).to.deep.equal({ overdue: 1, soon: 0 });
    await runJob(patientRightsJob, ctx);
    expect(await alerts()).to.equal(1);
    now += DAY;
    await runJob(patientRightsJob, ctx);
    expect(await alerts(), 'one alert per request').to.equal(1);
    expect(await rightsDue(deps(), desk, new Date(now)), 'not for those without rights.manage').to.equal(undefined);
  });

  it('answering: a denial needs its reason; an answered request cannot be answered again', async () => {
    const made = await recordRequest(deps(), actor, patientId, { kind: 'amendment', receivedVia: 'paper', receivedAt: new Date(now), details: 'Allergy is to latex, not penicillin' }, meta());
    const id = (made as { ok: true; value: string }).value;
    expect(await closeRequest(deps(), actor, id, { status: 'denied', note: '', feeCents: null }, meta())).to.deep.include({ ok: false, field: 'note' });
    expect((await closeRequest(deps(), actor, id, { status: 'denied', note: 'The record is accurate and complete', feeCents: null }, meta())).ok).to.equal(true);
    expect((await closeRequest(deps(), actor, id, { status: 'fulfilled', note: '', feeCents: 0 }, meta())).ok).to.equal(false);
    const { closed } = await requestsRegister(deps(), actor, meta());
    expect(closed.find((x) => x.id === id)).to.deep.include({ status: 'denied', outcomeNote: 'The record is accurate and complete' });
  });

  it('the accounting: a recorded disclosure and one produced by an export both appear; treatment, payment, operations and to-the-patient ones only when asked', async () => {
    await recordDisclosure(deps(), actor, patientId, { disclosedAt: new Date(now - 10 * DAY), purpose: 'court_order', recipientName: 'County Court', recipientAddress: '1 Justice Way', description: 'Treatment records 2025 under subpoena' }, meta());
    await recordDisclosure(deps(), actor, patientId, { disclosedAt: new Date(now - 5 * DAY), purpose: 'payment', recipientName: 'Example Dental Mutual', recipientAddress: '', description: 'Claim for D2391' }, meta());
    await recordDisclosure(deps(), actor, otherPatientId, { disclosedAt: new Date(now - 5 * DAY), purpose: 'public_health', recipientName: 'Health Dept', recipientAddress: '', description: 'Report' }, meta());
    // A single-patient export, downloaded: the download is a disclosure.
    const started = await startExport(deps(), actor, { patientId }, meta());
    const exportId = (started as { ok: true; value: { exportId: string } }).value.exportId;
    while ((await runExportStep(deps(), p.id, exportId, new Date(now))).more);
    await readFileFully((await openExportArchive(deps(), actor, exportId, meta()))!.stream);

    const standard = await accountingOfDisclosures(deps(), actor, patientId, { includeExcluded: false }, meta());
    expect(standard.rows.map((r) => r.purpose).sort()).to.deep.equal(['court_order', 'records_export']);
    expect(standard.rows.find((r) => r.purpose === 'court_order')).to.deep.include({ recipientName: 'County Court', recipientAddress: '1 Justice Way', description: 'Treatment records 2025 under subpoena', source: 'manual' });
    expect(standard.rows.find((r) => r.purpose === 'records_export')).to.deep.include({ source: 'export' });
    const all = await accountingOfDisclosures(deps(), actor, patientId, { includeExcluded: true }, meta());
    expect(all.rows.map((r) => r.purpose).sort()).to.deep.equal(['court_order', 'payment', 'records_export']);
    const period = await accountingOfDisclosures(deps(), actor, patientId, { includeExcluded: true, from: new Date(now - 7 * DAY), to: new Date(now + DAY) }, meta());
    expect(period.rows.map((r) => r.purpose).sort()).to.deep.equal(['payment', 'records_export']);
    // Reading it is audited; someone without rights.manage is refused.
    const views = await t.current.db.withPractice(p.id, { kind: 'system', id: 'test' }, (trx) => trx('audit_events').where({ action: 'view', resource_type: 'disclosure', patient_id: patientId }).count<{ n: string }[]>({ n: '*' }));
    expect(Number(views[0]!.n)).to.equal(3);
    expect(await accountingOfDisclosures(deps(), desk, patientId, { includeExcluded: true }, meta()).catch((e: unknown) => e)).to.be.instanceOf(AccessDenied);
  });

  it('confidential communications: an agreed “email only” suppresses a text when it is queued, and one queued before the rule when it would be sent; refusing needs a reason; the chart carries a banner', async () => {
    await t.current.db.withPractice(p.id, { kind: 'system', id: 'test' }, (trx) => trx('patients').where({ id: otherPatientId }).update({ sms_consent_at: new Date(now), sms_consent_source: 'written' }));
    const linkDeps = { db: t.current.db, keyring: fx.keyring, publicUrl: new URL('https://enamel.example') };
    const early = await createLink(linkDeps, actor, otherPatientId, { tasks: ['uploads'], formTemplateIds: [], send: 'sms' }, meta());
    expect(early.ok && early.value.message?.status).to.equal('queued');
    expect(await recordRestriction(deps(), actor, otherPatientId, { kind: 'confidential_communication', decision: 'refused', channel: 'no_email', description: 'No email', refusalReason: '' }, meta())).to.deep.include({ ok: false, field: 'refusalReason' });
    expect((await recordRestriction(deps(), actor, otherPatientId, { kind: 'confidential_communication', decision: 'agreed', channel: 'email_only', description: 'Only email: shared phone at home', refusalReason: '' }, meta())).ok).to.equal(true);
    const late = await createLink(linkDeps, actor, otherPatientId, { tasks: ['uploads'], formTemplateIds: [], send: 'sms' }, meta());
    expect(late.ok && late.value.message?.status, 'refused when queued').to.equal('suppressed');
    const transport = new MemoryTransport();
    const delivered = await deliverDue({ db: t.current.db, keyring: fx.keyring, transport, logger: createLogger('silent') }, new Date(now + 60_000));
    expect(delivered.suppressed, 'the text queued before the rule is not sent either').to.equal(1);
    expect(transport.sent).to.have.length(0);
    const events = await t.current.db.withPractice(p.id, { kind: 'system', id: 'test' }, (trx) => trx('audit_events').where({ action: 'message_suppressed' }).pluck('details'));
    expect(events.filter((e: { suppressed_because?: string }) => e.suppressed_because === 'confidential_communication')).to.have.length(2);
    const { restrictions } = await loadChart(otherPatientId);
    expect(restrictions).to.deep.equal([{ kind: 'confidential_communication', channel: 'email_only' }]);
  });

  it('amendments: an accepted one appears beside the original in the notes, the chart, the plan print and the export, the original unchanged; a denial carries the statement of disagreement everywhere', async () => {
    const owner = await t.current.db.withPractice(p.id, { kind: 'system', id: 'test' }, (trx) => trx('users').where({ is_owner: true }).first<{ id: string }>('id'));
    const noteId = randomUUID();
    const planId = randomUUID();
    await t.current.db.withPractice(p.id, { kind: 'system', id: 'test' }, async (trx) => {
      const pc = new PracticeCrypto(fx.keyring, trx, p.id);
      await trx('clinical_notes').insert({ id: noteId, practice_id: p.id, patient_id: patientId, author_id: owner!.id, location_id: p.locationIds[0], status: 'signed', signed_at: new Date(now), content_hash: createHash('sha256').update('Allergy: penicillin.').digest('hex'), ...(await noteSecrets.seal(pc, noteId, { body: 'Allergy: penicillin.' })) });
      await trx('treatment_plans').insert({ id: planId, practice_id: p.id, patient_id: patientId, status: 'draft', created_by: owner!.id, ...(await planSecrets.seal(pc, planId, { title: 'Crown 30' })) });
    });
    const onNote = await requestAmendment(deps(), actor, patientId, { targetType: 'clinical_note', targetId: noteId, change: 'The allergy is to latex', receivedVia: 'paper', receivedAt: new Date(now) }, meta());
    const onPlan = await requestAmendment(deps(), actor, patientId, { targetType: 'treatment_plan', targetId: planId, change: 'I asked for a porcelain crown', receivedVia: 'paper', receivedAt: new Date(now) }, meta());
    const onDemographics = await requestAmendment(deps(), actor, patientId, { targetType: 'demographics', targetId: patientId, change: 'My birth date is wrong', receivedVia: 'paper', receivedAt: new Date(now) }, meta());
    const elsewhere = await requestAmendment(deps(), actor, patientId, { targetType: 'clinical_note', targetId: randomUUID(), change: 'x x x', receivedVia: 'paper', receivedAt: new Date(now) }, meta());
    expect(elsewhere).to.deep.include({ ok: false, field: 'target' });
    const id = (r: unknown) => (r as { ok: true; value: string }).value;
    expect(await decideAmendment(deps(), actor, id(onNote), { decision: 'accepted', text: '' }, meta())).to.deep.include({ ok: false, field: 'text' });
    expect((await decideAmendment(deps(), actor, id(onNote), { decision: 'accepted', text: 'Correction at the patient’s request: the allergy is to latex.' }, meta())).ok).to.equal(true);
    expect((await decideAmendment(deps(), actor, id(onPlan), { decision: 'accepted', text: 'The patient asked for a porcelain crown.' }, meta())).ok).to.equal(true);
    expect((await decideAmendment(deps(), actor, id(onDemographics), { decision: 'denied', text: 'The birth date matches the ID card on file' }, meta())).ok).to.equal(true);
    expect((await addDisagreement(deps(), actor, id(onNote), 'x', meta())).ok, 'only a denial takes a statement').to.equal(false);
    expect((await addDisagreement(deps(), actor, id(onDemographics), 'I was born on the 13th, not the 12th', meta())).ok).to.equal(true);

    const noteDeps = { db: t.current.db, keyring: fx.keyring, files: fx.files };
    const notes = await notesPage(noteDeps as never, actor, patientId, meta());
    const note = notes.notes.find((n) => n.id === noteId)!;
    expect(note.body, 'the original note is unchanged').to.equal('Allergy: penicillin.');
    expect(note.patientAmendments.map((a) => a.response)).to.deep.equal(['Correction at the patient’s request: the allergy is to latex.']);
    const printed = await printPlan(noteDeps as never, actor, planId, meta());
    expect(printed.plan.patientAmendments!.map((a) => a.response)).to.deep.equal(['The patient asked for a porcelain crown.']);
    expect(printed.plan.title).to.equal('Crown 30');
    const chart = (await showPatient(deps() as never, actor, patientId, meta())) as { amendments?: { decision: string; disagreement: string | null }[] };
    expect(chart.amendments).to.have.length(1);
    expect(chart.amendments![0]).to.deep.include({ decision: 'denied', disagreement: 'I was born on the 13th, not the 12th' });

    const started = await startExport(deps(), actor, { patientId }, meta());
    const exportId = (started as { ok: true; value: { exportId: string } }).value.exportId;
    while ((await runExportStep(deps(), p.id, exportId, new Date(now))).more);
    const exported = (await readFileFully((await openExportArchive(deps(), actor, exportId, meta()))!.stream)) as Buffer;
    const reader = new ZipReader(new Uint8ArrayReader(new Uint8Array(exported)), { password: (started as { ok: true; value: { passphrase: string } }).value.passphrase });
    const entry = (await reader.getEntries()).find((e) => e.filename === 'Composition.ndjson') as { getData(w: TextWriter): Promise<string> };
    const compositions: string = await entry.getData(new TextWriter());
    await reader.close();
    const lines = compositions.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { id: string; relatesTo?: { targetReference: { reference: string } }[]; section: { text: { div: string } }[] });
    const appended = lines.find((c) => c.id === id(onNote))!;
    expect(appended.relatesTo![0]!.targetReference.reference).to.equal(`Composition/${noteId}`);
    expect(lines.find((c) => c.id === noteId)!.section[0]!.text.div, 'the exported original is unchanged').to.include('Allergy: penicillin.');
    expect(lines.find((c) => c.id === id(onDemographics))!.section[0]!.text.div).to.include('statement of disagreement').and.include('born on the 13th');
  });

  it('who saw my record: a staff view and a break-glass access with its reason code, the staff member by name and role, no other patient’s events; reading it is audited', async () => {
    const provider = await buildStaff(t.current, { keyring: fx.keyring, now: () => now }, p, { roles: ['provider'], name: 'Dr Emergency' });
    await t.current.db.withPractice(p.id, { kind: 'system', id: 'test' }, async (trx) => {
      await audit.record(trx, { practiceId: p.id, actor: { kind: 'user', id: provider.id }, action: 'break_glass', resource: { type: 'patient', id: patientId }, patientId, outcome: 'allowed', reason: 'emergency' });
      await audit.record(trx, { practiceId: p.id, actor: { kind: 'user', id: provider.id }, action: 'view', resource: { type: 'patient', id: patientId }, patientId, outcome: 'allowed', reason: 'emergency' });
      await audit.record(trx, { practiceId: p.id, actor: { kind: 'user', id: provider.id }, action: 'view', resource: { type: 'patient', id: otherPatientId }, patientId: otherPatientId, outcome: 'allowed' });
    });
    await showPatient(deps() as never, actor, patientId, meta());
    const linkId = randomUUID();
    const report = await accessReportForLink({ db: t.current.db }, { practiceId: p.id, linkId, patientId }, meta());
    const emergency = report.filter((l) => l.emergency);
    expect(emergency.map((l) => l.what)).to.include.members(['Used emergency access to your record', 'Opened your chart — emergency access (reason: emergency)']);
    expect(emergency[0]).to.deep.include({ who: 'Dr Emergency' });
    expect(emergency[0]!.role).to.include('Provider');
    expect(report.some((l) => l.what === 'Opened your chart' && !l.emergency), 'the owner’s own view').to.equal(true);
    const other = await t.current.db.withPractice(p.id, { kind: 'system', id: 'test' }, (trx) => trx('audit_events').where({ patient_id: otherPatientId, actor_type: 'user' }).count<{ n: string }[]>({ n: '*' }));
    expect(Number(other[0]!.n)).to.be.greaterThan(0);
    const allMine = await t.current.db.withPractice(p.id, { kind: 'system', id: 'test' }, (trx) => trx('audit_events').where({ patient_id: patientId, actor_type: 'user' }).count<{ n: string }[]>({ n: '*' }));
    expect(report, 'every staff event about this patient, and only those').to.have.length(Number(allMine[0]!.n));
    const audited = await t.current.db.withPractice(p.id, { kind: 'system', id: 'test' }, (trx) => trx('audit_events').where({ actor_type: 'patient_link', actor_id: linkId, action: 'view', resource_type: 'audit_log', patient_id: patientId }).count<{ n: string }[]>({ n: '*' }));
    expect(Number(audited[0]!.n)).to.equal(1);
  });

  it('the patient’s own copy through their link: audited as the link at each step, only this link’s export, no audit trail inside, a disclosure to the patient that the accounting shows only when asked', async () => {
    const link = { practiceId: p.id, linkId: randomUUID(), patientId, tasks: ['records_download'] as const, planId: null, formTemplateIds: [] };
    const stranger = { ...link, linkId: randomUUID(), patientId: otherPatientId };
    const started = await startLinkExport(deps(), link, meta());
    if (!started.ok) throw new Error(started.error);
    expect(await startLinkExport(deps(), link, meta()), 'one copy at a time').to.deep.include({ ok: false });
    expect(await linkExportState(deps(), stranger), 'another link sees nothing').to.equal(undefined);
    while ((await runExportStep(deps(), p.id, started.value.exportId, new Date(now))).more);
    expect(await linkExportState(deps(), link)).to.deep.include({ status: 'done', requestedVia: 'patient_link' });
    expect(await openLinkExportArchive(deps(), stranger, started.value.exportId, meta()).catch((e: unknown) => e), 'another link’s download').to.be.instanceOf(AccessDenied);
    const opened = await openLinkExportArchive(deps(), link, started.value.exportId, meta());
    const zip = new ZipReader(new Uint8ArrayReader(await readFileFully(opened!.stream)), { password: started.value.passphrase });
    const names = (await zip.getEntries()).map((e) => e.filename);
    expect(names).to.include.members(['Patient.ndjson', 'index.html']);
    expect(names, 'the designated record set, not the audit trail').to.not.include('AuditEvent.ndjson');
    const events = await t.current.db.withPractice(p.id, { kind: 'system', id: 'test' }, (trx) => trx('audit_events').where({ actor_type: 'patient_link', actor_id: link.linkId }).orderBy('id').pluck('action'));
    expect(events).to.deep.equal(['create', 'export', 'download']);
    const standard = await accountingOfDisclosures(deps(), actor, patientId, { includeExcluded: false }, meta());
    expect(standard.rows.some((r) => r.source === 'patient_link'), 'to the patient: excludable').to.equal(false);
    const all = await accountingOfDisclosures(deps(), actor, patientId, { includeExcluded: true }, meta());
    expect(all.rows.find((r) => r.source === 'patient_link')).to.deep.include({ purpose: 'to_patient', recordedBy: 'The patient, through their link' });
  });

  it('asking for a correction through the link: a 60-day amendment request in the register, received through the link; a part of someone else’s record is refused', async () => {
    const link = { practiceId: p.id, linkId: randomUUID(), patientId, tasks: ['amendment_request'] as const, planId: null, formTemplateIds: [] };
    const page = await linkAmendmentPage(deps(), link, meta());
    expect(page.targets[0]).to.deep.include({ type: 'demographics', id: patientId });
    const othersNote = randomUUID();
    await t.current.db.withPractice(p.id, { kind: 'system', id: 'test' }, async (trx) => trx('clinical_notes').insert({ id: othersNote, practice_id: p.id, patient_id: otherPatientId, author_id: actor.id, location_id: p.locationIds[0], status: 'draft', ...(await noteSecrets.seal(new PracticeCrypto(fx.keyring, trx, p.id), othersNote, { body: 'Someone else' })) }));
    expect(page.targets.some((x) => x.id === othersNote)).to.equal(false);
    expect(await requestAmendmentByLink(deps(), link, { targetType: 'demographics', targetId: otherPatientId, change: 'Mine now' }, meta())).to.deep.include({ ok: false, field: 'target' });
    expect(await requestAmendmentByLink(deps(), link, { targetType: 'clinical_note', targetId: othersNote, change: 'Mine now' }, meta())).to.deep.include({ ok: false, field: 'target' });
    const sent = await requestAmendmentByLink(deps(), link, { targetType: 'demographics', targetId: patientId, change: 'My street is Elm Road, not Elm Street' }, meta());
    expect(sent.ok).to.equal(true);
    const { open } = await requestsRegister(deps(), actor, meta());
    const mine = open.find((r) => r.kind === 'amendment' && r.receivedVia === 'patient_link' && r.details === 'My street is Elm Road, not Elm Street');
    expect(mine).to.not.equal(undefined);
    expect(mine!.dueAt.getTime() - mine!.receivedAt.getTime()).to.equal(60 * DAY);
    expect((await linkAmendmentPage(deps(), link, meta())).asked.some((a) => a.requestedChange === 'My street is Elm Road, not Elm Street' && a.decision === 'pending')).to.equal(true);
    const created = await t.current.db.withPractice(p.id, { kind: 'system', id: 'test' }, (trx) => trx('audit_events').where({ actor_type: 'patient_link', actor_id: link.linkId, action: 'create', resource_type: 'patient_request' }).count<{ n: string }[]>({ n: '*' }));
    expect(Number(created[0]!.n)).to.equal(1);
  });

  it('the practice may show roles only in “who saw my record”: the name goes, every line stays', async () => {
    const link = { practiceId: p.id, linkId: randomUUID(), patientId };
    const before = await accessReportForLink({ db: t.current.db }, link, meta());
    await t.current.db.withPractice(p.id, { kind: 'system', id: 'test' }, (trx) => trx('practice_settings').update({ access_report_names: false }));
    const after = await accessReportForLink({ db: t.current.db }, link, meta());
    await t.current.db.withPractice(p.id, { kind: 'system', id: 'test' }, (trx) => trx('practice_settings').update({ access_report_names: true }));
    expect(before.some((l) => l.who !== null)).to.equal(true);
    expect(after.every((l) => l.who === null)).to.equal(true);
    expect(after.map((l) => [l.what, l.role, l.emergency])).to.deep.equal(before.map((l) => [l.what, l.role, l.emergency]));
  });

  it('ending an agreed contact rule: the outbox honours it no longer; ending it twice, or a refused one, changes nothing', async () => {
    const rule = await recordRestriction(deps(), actor, patientId, { kind: 'confidential_communication', decision: 'agreed', channel: 'no_text', description: 'No texts for now', refusalReason: '' }, meta());
    const refused = await recordRestriction(deps(), actor, patientId, { kind: 'restriction', decision: 'refused', channel: null, description: 'Hide from insurer', refusalReason: 'Claims need it' }, meta());
    if (!rule.ok || !refused.ok) throw new Error('setup');
    await t.current.db.withPractice(p.id, { kind: 'system', id: 'test' }, (trx) => trx('patients').where({ id: patientId }).update({ sms_consent_at: new Date(now), sms_consent_source: 'written' }));
    const linkDeps = { db: t.current.db, keyring: fx.keyring, publicUrl: new URL('https://enamel.example') };
    const heldBack = await createLink(linkDeps, actor, patientId, { tasks: ['uploads'], formTemplateIds: [], send: 'sms' }, meta());
    expect(heldBack.ok && heldBack.value.message?.status).to.equal('suppressed');
    expect(await endPatientRestriction(deps(), desk, rule.value, meta()).catch((e: unknown) => e), 'front desk').to.be.instanceOf(AccessDenied);
    expect(await endPatientRestriction(deps(), actor, rule.value, meta())).to.deep.equal({ patientId });
    expect(await endPatientRestriction(deps(), actor, rule.value, meta())).to.have.property('error');
    expect(await endPatientRestriction(deps(), actor, refused.value, meta())).to.have.property('error');
    const sent = await createLink(linkDeps, actor, patientId, { tasks: ['uploads'], formTemplateIds: [], send: 'sms' }, meta());
    expect(sent.ok && sent.value.message?.status).to.equal('queued');
    const { restrictions } = await loadChart(patientId);
    expect(restrictions, 'the banner goes with it').to.deep.equal([]);
  });
});
