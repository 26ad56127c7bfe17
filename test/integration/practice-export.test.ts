import { expect } from 'chai';
import { createHash, randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import { configure, TextWriter, Uint8ArrayReader, Uint8ArrayWriter, ZipReader } from '@zip.js/zip.js';
import { PracticeCrypto } from '../../src/crypto/encrypted-columns.js';
import { ALL_PERMISSIONS } from '../../src/permissions.js';
import type { StaffActor } from '../../src/policies/index.js';
import { amendmentSecrets } from '../../src/queries/notes.queries.js';
import { decisionSecrets } from '../../src/queries/plans.queries.js';
import { planSecrets } from '../../src/queries/plans.queries.js';
import { submissionSecrets } from '../../src/queries/forms.queries.js';
import { exportProgress, openExportArchive, PATIENT_BATCH, runExportStep, startExport } from '../../src/services/exports/exports.service.js';
import { seedDemoOwner, demoOwnerId } from '../../seeds/demo-owner.js';
import { seedDemoPatients } from '../../seeds/demo-patients.js';
import { seed as seedDemoPractice } from '../../seeds/demo-practice.js';
import { buildCryptoFixture, type CryptoFixture } from '../support/crypto.js';
import { useTestDatabase } from '../support/db.js';
import { readFileFully } from '../../src/crypto/encrypted-files.js';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

configure({ useWebWorkers: false });
const require = createRequire(import.meta.url);
const Validator = require('@asymmetrik/fhir-json-schema-validator') as new () => { validate(resource: unknown, verbose?: boolean): unknown[] };

/**
 * The practice export (issue 17) of the demo practice: 300 patients with notes, plans and images,
 * plus an amendment, a plan decision, a signed form and a patient link. Every NDJSON line is a
 * valid FHIR R4 resource (the HL7 JSON schema), every file is in the index, the archive opens only
 * with its passphrase, and an interrupted export resumes without losing or repeating a patient.
 */
describe('practice export: FHIR R4 NDJSON in an encrypted archive', function () {
  this.timeout(120_000);
  const t = useTestDatabase();
  let fx: CryptoFixture;
  let dataDir: string;
  let practiceId: string;
  let actor: StaffActor;
  const meta = () => ({ ip: '127.0.0.1', requestId: 'req-export-1', now: new Date() });
  const deps = () => ({ db: t.current.db, keyring: fx.keyring, files: fx.files });
  const inPractice = <T>(fn: Parameters<typeof t.current.db.withPractice<T>>[2]) => t.current.db.withPractice(practiceId, { kind: 'system', id: 'test' }, fn);

  async function runToEnd(id: string, maxSteps = 1000): Promise<number> {
    let steps = 0;
    for (; steps < maxSteps; steps++) if (!(await runExportStep(deps(), practiceId, id, new Date())).more) break;
    return steps + 1;
  }

  async function archiveOf(id: string): Promise<Uint8Array> {
    const opened = await openExportArchive(deps(), actor, id, meta());
    return new Uint8Array(await readFileFully(opened!.stream));
  }

  async function entries(zip: Uint8Array, password: string): Promise<Map<string, string>> {
    const reader = new ZipReader(new Uint8ArrayReader(zip), { password });
    const out = new Map<string, string>();
    for (const e of await reader.getEntries()) {
      if (e.directory) continue;
      out.set(e.filename, e.filename.startsWith('files/') ? String((await e.getData!(new Uint8ArrayWriter())).length) : await e.getData!(new TextWriter()));
    }
    await reader.close();
    return out;
  }

  before(async () => {
    fx = await buildCryptoFixture(t.current);
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'enamel-export-demo-'));
    practiceId = (await seedDemoPractice(t.current.owner)).practiceId;
    await seedDemoOwner(t.current.owner, fx.keyring, practiceId, dataDir, 'http://localhost:3000/');
    const ownerId = (await demoOwnerId(t.current.owner, practiceId))!;
    await seedDemoPatients(t.current.owner, fx.keyring, fx.files, practiceId, ownerId);
    actor = { kind: 'user', id: ownerId, practiceId, slug: 'demo', displayName: 'Demo Owner', permissions: new Set(ALL_PERMISSIONS), locations: 'all', isOwner: true, authAt: Date.now() } as StaffActor;
    // What the demo does not have: an amendment, a decided plan, a signed form, a patient link.
    await inPractice(async (trx) => {
      const pc = new PracticeCrypto(fx.keyring, trx, practiceId);
      const note = await trx('clinical_notes').first<{ id: string; patient_id: string }>('id', 'patient_id');
      const amendmentId = randomUUID();
      await trx('clinical_note_amendments').insert({ id: amendmentId, practice_id: practiceId, note_id: note!.id, author_id: ownerId, content_hash: createHash('sha256').update('Correction: tooth 15.').digest('hex'), ...(await amendmentSecrets.seal(pc, amendmentId, { body: 'Correction: tooth 15.' })) });
      const planId = randomUUID();
      const linkId = randomUUID();
      await trx('treatment_plans').insert({ id: planId, practice_id: practiceId, patient_id: note!.patient_id, status: 'declined', created_by: ownerId, presented_at: new Date(), decided_at: new Date(), decided_by: `patient_link:${linkId}`, ...(await planSecrets.seal(pc, planId, { title: 'Crown on 30' })) });
      const templateId = randomUUID();
      const versionId = randomUUID();
      await trx('form_templates').insert({ id: templateId, practice_id: practiceId, key: 'medical_history_test' });
      await trx('form_template_versions').insert({ id: versionId, practice_id: practiceId, template_id: templateId, version: 1, definition: JSON.stringify({ title: 'Medical history', notice: 'Tell us.', fields: [{ name: 'allergies', label: 'Allergies', type: 'text', required: true }, { name: 'pregnant', label: 'Pregnant?', type: 'yes_no', required: false }, { name: 'last_visit', label: 'Last visit', type: 'date', required: false }] }) });
      await trx('patient_links').insert({ id: linkId, practice_id: practiceId, patient_id: note!.patient_id, tasks: ['plan_review', 'intake_forms'], plan_id: planId, form_template_ids: [templateId], code_hash: createHash('sha256').update(linkId).digest('hex'), created_by: ownerId, expires_at: new Date(Date.now() + 86_400_000), verified_at: new Date() });
      const decisionId = randomUUID();
      await trx('plan_decisions').insert({ id: decisionId, practice_id: practiceId, plan_id: planId, link_id: linkId, decision: 'declined', plan_hash: 'a'.repeat(64), decided_at: new Date(), ...(await decisionSecrets.seal(pc, decisionId, { signer: { fullName: 'Pat Example', signature: null, drawing: null } })) });
      const submissionId = randomUUID();
      await trx('form_submissions').insert({ id: submissionId, practice_id: practiceId, patient_id: note!.patient_id, template_version_id: versionId, link_id: linkId, content_hash: 'b'.repeat(64), submitted_at: new Date(), ...(await submissionSecrets.seal(pc, submissionId, { content: { answers: { allergies: 'Penicillin', pregnant: false, last_visit: '2025-03-04' }, signer: { fullName: 'Pat Example', signature: 'Pat Example', drawing: null } } })) });
    });
  });

  after(async () => {
    await rm(dataDir, { recursive: true, force: true });
    await fx.cleanup();
  });

  let exportId: string;
  let passphrase: string;
  let files: Map<string, string>;

  it('builds the whole export; every NDJSON line is valid FHIR R4; the index lists every file', async () => {
    const started = await startExport(deps(), actor, {}, meta());
    expect(started.ok).to.equal(true);
    ({ exportId, passphrase } = (started as { ok: true; value: { exportId: string; passphrase: string } }).value);
    expect(passphrase).to.match(/^[0-9A-Z]{4}(-[0-9A-Z]{4}){4}$/);
    const again = await startExport(deps(), actor, {}, meta());
    expect(again.ok, 'one export at a time').to.equal(false);
    const steps = await runToEnd(exportId);
    expect(steps).to.be.greaterThan(300 / PATIENT_BATCH);
    const progress = await exportProgress(deps(), actor, exportId);
    expect(progress).to.include({ status: 'done', total: 300, done: 300, percent: 100 });

    files = await entries(await archiveOf(exportId), passphrase);
    const validator = new Validator();
    const byType = new Map<string, unknown[]>();
    for (const [name, text] of files) {
      if (!name.endsWith('.ndjson')) continue;
      const type = name.slice(0, -'.ndjson'.length);
      for (const line of text.split('\n').filter(Boolean)) {
        const resource = JSON.parse(line) as { resourceType: string; id: string };
        expect(resource.resourceType, name).to.equal(type);
        const errors = validator.validate(resource, true);
        expect(errors, `${type}/${resource.id}: ${JSON.stringify(errors).slice(0, 400)}`).to.deep.equal([]);
        byType.set(type, [...(byType.get(type) ?? []), resource]);
      }
    }
    expect(byType.get('Patient')).to.have.length(300);
    expect(new Set((byType.get('Patient') as { id: string }[]).map((p) => p.id)).size).to.equal(300);
    for (const type of ['Composition', 'CarePlan', 'Consent', 'QuestionnaireResponse', 'DocumentReference', 'Task', 'AuditEvent', 'Coverage']) expect(byType.get(type), type).to.not.equal(undefined);
    expect((byType.get('Composition') as { relatesTo?: { code: string }[] }[]).some((c) => c.relatesTo?.[0]?.code === 'appends'), 'the amendment appends to its note').to.equal(true);
    const images = [...files.keys()].filter((n) => n.startsWith('files/'));
    expect(images.length).to.be.greaterThan(0);
    for (const img of images) expect(Number(files.get(img))).to.be.greaterThan(0);
    const index = files.get('index.html')!;
    for (const name of files.keys()) expect(index, `index lists ${name}`).to.include(name);
    // File names in a zip are not encrypted: they carry ids and types only.
    const names = [...files.keys()].join(' ');
    expect(names).to.not.match(/[A-Z][a-z]+ [A-Z][a-z]+/);
  });

  it('the archive does not open without the passphrase, nor with a wrong one', async () => {
    const zip = await archiveOf(exportId);
    const wrong = await entries(zip, 'AAAA-BBBB-CCCC-DDDD-EEEE').catch((e: Error) => e);
    expect(wrong).to.be.instanceOf(Error);
    const none = await entries(zip, '').catch((e: Error) => e);
    expect(none).to.be.instanceOf(Error);
    // And nothing readable is in it: no patient's name from the export.
    const firstPatient = JSON.parse(files.get('Patient.ndjson')!.split('\n')[0]!) as { name: { family: string }[] };
    expect(Buffer.from(zip).includes(Buffer.from(firstPatient.name[0]!.family))).to.equal(false);
  });

  it('every patient is audited as exported by the owner who asked; the owner’s export volume raises an alert; the passphrase is gone from the database', async () => {
    const audited = await inPractice((trx) => trx('audit_events').where({ action: 'export', resource_id: exportId, actor_id: actor.id }).countDistinct<{ n: string }[]>({ n: 'patient_id' }));
    expect(Number(audited[0]!.n)).to.equal(300);
    const alerts = await inPractice((trx) => trx('security_alerts').where({ kind: 'export_volume' }).count<{ n: string }[]>({ n: '*' }));
    expect(Number(alerts[0]!.n)).to.be.at.least(1);
    const row = await inPractice((trx) => trx('practice_exports').where({ id: exportId }).first('passphrase', 'archive_file_id'));
    expect(row.passphrase).to.equal(null);
    const parts = await inPractice((trx) => trx('practice_export_parts').where({ export_id: exportId }).count<{ n: string }[]>({ n: '*' }));
    expect(parts).to.deep.equal([{ n: '0' }]);
  });

  it('an interrupted export resumes from its cursor: no patient lost, none twice', async () => {
    const started = await startExport(deps(), actor, {}, meta());
    const { exportId: id, passphrase: pass } = (started as { ok: true; value: { exportId: string; passphrase: string } }).value;
    for (let i = 0; i < 3; i++) await runExportStep(deps(), practiceId, id, new Date());
    // A step that dies midway (the process is killed): its transaction rolls back, the cursor stays.
    const before = await inPractice((trx) => trx('practice_exports').where({ id }).first('done', 'cursor'));
    expect(before.done).to.equal(3 * PATIENT_BATCH);
    const broken = { db: t.current.db, keyring: fx.keyring, files: { ...fx.files, put: () => Promise.reject(Object.assign(new Error('disk gone'), { code: 'EIO' })) } as never };
    expect(await runExportStep(broken, practiceId, id, new Date()).catch((e: Error) => e)).to.be.instanceOf(Error);
    const after = await inPractice((trx) => trx('practice_exports').where({ id }).first('done', 'cursor', 'status'));
    expect(after).to.deep.equal({ ...before, status: 'running' });
    // "After the restart": new deps, the same database.
    await runToEnd(id);
    const patients = (await entries(await archiveOf(id), pass)).get('Patient.ndjson')!.split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { id: string }).id);
    expect(patients).to.have.length(300);
    expect(new Set(patients).size).to.equal(300);
  });

  it('a single patient’s export runs the same code with one patient and their audit events', async () => {
    const one = await inPractice((trx) => trx('patients').orderBy('id').first<{ id: string }>('id'));
    const started = await startExport(deps(), actor, { patientId: one!.id }, meta());
    const { exportId: id, passphrase: pass } = (started as { ok: true; value: { exportId: string; passphrase: string } }).value;
    await runToEnd(id);
    const got = await entries(await archiveOf(id), pass);
    expect(got.get('Patient.ndjson')!.split('\n').filter(Boolean)).to.have.length(1);
    const events = got.get('AuditEvent.ndjson')!.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { entity?: { what: { reference?: string } }[] });
    expect(events.length).to.be.greaterThan(0);
    for (const e of events) expect(e.entity?.[0]?.what.reference).to.equal(`Patient/${one!.id}`);
  });
});
