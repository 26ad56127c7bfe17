import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import type { Knex } from 'knex';
import { raiseAlert } from '../../alerts/alerts.js';
import { audit } from '../../audit/record.js';
import { agreementOn, coverageMap, isGap, type ConfiguredIntegration, type CoverageLine, type Integration, type VendorLike } from '../../compliance/coverage.js';
import { PracticeCrypto } from '../../crypto/encrypted-columns.js';
import { openFileDetached, saveFile } from '../../crypto/encrypted-files.js';
import { deleteStoredFiles, objectNames } from '../../queries/documents.queries.js';
import type { FileStore } from '../../storage/file-store.js';
import type { Accepted } from '../../uploads/pipeline.js';
import type { Keyring } from '../../crypto/keyring.js';
import { INSTALLATION_ID, type Db } from '../../db/tenant.js';
import { AccessDenied, authorize, ensure, type StaffActor } from '../../policies/index.js';
import { incidentCountsByVendor } from '../../queries/incidents.queries.js';
import {
  findVendor,
  insertVendor,
  insertVendorChange,
  listGaps,
  listVendors,
  replaceGaps,
  updateVendor,
  vendorChanges,
  vendorSecrets,
  type AgreementStatus,
  type DataSeen,
  type VendorRow,
} from '../../queries/vendors.queries.js';
import type { FormResult, Meta } from '../../shared/types.js';
import type { OperatorActor } from '../operators/operators.service.js';
import { staffCryptoWork, staffEvent, staffWork } from '../staff-work.js';

/**
 * The business associate registry (docs/INCIDENTS.md): the installation's vendors (the operator's)
 * and each practice's own, with the coverage map derived from the configuration; the sub-processor
 * list generated from both; the daily check that raises an alert when something that sees PHI has
 * no agreement in force.
 */

export interface VendorInput {
  name: string;
  service: string;
  integration: Integration | null;
  dataSeen: DataSeen;
  agreement: AgreementStatus;
  signedOn: string | null;
  expiresOn: string | null;
  reviewOn: string | null;
  notes: string;
  listed: boolean;
}

export interface VendorView extends VendorLike {
  service: string;
  /** The agreement as recorded (the effective one, with expiry applied, is `agreement`). */
  recorded: AgreementStatus;
  signedOn: string | null;
  reviewOn: string | null;
  reviewDue: boolean;
  notes: string;
  listed: boolean;
  incidents: number;
  /** Whether a signed copy of the agreement is stored. */
  hasDocument: boolean;
}

const today = (now: Date) => now.toISOString().slice(0, 10);

async function views(trx: Knex.Transaction, pc: PracticeCrypto | null, rows: VendorRow[], now: Date, incidents = new Map<string, number>()): Promise<VendorView[]> {
  const out: VendorView[] = [];
  for (const r of rows) {
    const notes = pc ? ((await vendorSecrets.open(pc, r as never)).notes ?? '') : '';
    out.push({
      id: r.id,
      name: r.name,
      service: r.service,
      integration: r.integration,
      dataSeen: r.data_seen,
      agreement: agreementOn({ agreement: r.agreement, expiresOn: r.expires_on }, today(now)),
      recorded: r.agreement,
      signedOn: r.signed_on,
      expiresOn: r.expires_on,
      reviewOn: r.review_on,
      reviewDue: r.review_on !== null && r.review_on <= today(now),
      notes,
      listed: r.listed,
      incidents: incidents.get(r.id) ?? 0,
      hasDocument: r.document_file_id !== null,
    });
  }
  return out;
}

function check(input: VendorInput): { error: string; field: string } | undefined {
  if (input.agreement === 'executed' && !input.signedOn) return { error: 'Enter the day the agreement was signed.', field: 'signedOn' };
  if (input.signedOn && input.expiresOn && input.expiresOn <= input.signedOn) return { error: 'The agreement must end after the day it was signed.', field: 'expiresOn' };
  return undefined;
}

const row = (input: VendorInput) => ({
  name: input.name,
  service: input.service,
  integration: input.integration,
  data_seen: input.dataSeen,
  agreement: input.agreement,
  signed_on: input.signedOn,
  expires_on: input.expiresOn,
  review_on: input.reviewOn,
  listed: input.listed,
});

/** Adds or changes an entry (in the tenant of `trx`), recording the dated change; returns its id. */
async function writeVendor(trx: Knex.Transaction, pc: PracticeCrypto, practiceId: string, id: string | null, input: VendorInput, by: string, now: Date): Promise<string> {
  if (id) {
    const before = await findVendor(trx, id);
    if (!before) throw new AccessDenied({ resource: { type: 'vendor', id } });
    await updateVendor(trx, id, { ...row(input), ...(await vendorSecrets.seal(pc, id, { notes: input.notes || null })) });
    await insertVendorChange(trx, { practice_id: practiceId, vendor_id: id, changed_at: now, change: before.agreement !== input.agreement ? 'agreement' : 'updated', agreement: input.agreement, changed_by: by });
    return id;
  }
  const newId = randomUUID();
  await insertVendor(trx, { id: newId, practice_id: practiceId, ...row(input), ...(await vendorSecrets.seal(pc, newId, { notes: input.notes || null })) });
  await insertVendorChange(trx, { practice_id: practiceId, vendor_id: newId, changed_at: now, change: 'added', agreement: input.agreement, changed_by: by });
  return newId;
}

// --- The practice's registry ------------------------------------------------------------------

export interface RegistryPage {
  vendors: VendorView[];
  /** The practice's own vendors that see PHI, by coverage. */
  coverage: CoverageLine[];
  /** The installation's integrations (read-only here: the operator keeps them). */
  installation: CoverageLine[];
}

/** The practice's registry, its coverage, and the installation's coverage map (what the practice's data passes through). */
export async function practiceRegistry(d: { db: Db; keyring: Keyring }, actor: StaffActor, integrations: readonly ConfiguredIntegration[], now: Date): Promise<RegistryPage> {
  ensure(authorize(actor, 'practice.manageVendors'), { permission: 'compliance.manage', resource: { type: 'vendor' } });
  const vendors = await staffCryptoWork(d, actor, async (trx, pc) => views(trx, pc, await listVendors(trx), now, new Map((await incidentCountsByVendor(trx)).map((c) => [c.vendor_id, c.n]))));
  // The installation's entries (names, services, agreement states: no secrets) under the installation tenant.
  const installationVendors = await d.db.withPractice(INSTALLATION_ID, { kind: 'system', id: 'registry-read' }, async (trx) => views(trx, null, await listVendors(trx), now));
  return { vendors, coverage: coverageMap([], vendors, today(now)), installation: coverageMap(integrations, installationVendors, today(now)) };
}

export async function savePracticeVendor(d: { db: Db; keyring: Keyring }, actor: StaffActor, id: string | null, input: VendorInput, meta: Meta): Promise<FormResult<string>> {
  ensure(authorize(actor, 'practice.manageVendors'), { permission: 'compliance.manage', resource: { type: 'vendor' } });
  const problem = check(input);
  if (problem) return { ok: false, ...problem };
  return staffCryptoWork(d, actor, async (trx, pc) => {
    const saved = await writeVendor(trx, pc, actor.practiceId, id, { ...input, integration: null }, actor.id, meta.now);
    await audit.record(trx, staffEvent(actor, meta, { action: id ? 'update' : 'create', resource: { type: 'vendor', id: saved }, outcome: 'allowed' }));
    return { ok: true, value: saved };
  });
}

export async function removePracticeVendor(d: { db: Db; keyring: Keyring }, actor: StaffActor, id: string, meta: Meta): Promise<void> {
  ensure(authorize(actor, 'practice.manageVendors'), { permission: 'compliance.manage', resource: { type: 'vendor' } });
  await staffCryptoWork(d, actor, async (trx) => {
    const v = await findVendor(trx, id);
    if (!v) throw new AccessDenied({ resource: { type: 'vendor', id } });
    await updateVendor(trx, id, { removed_at: meta.now });
    await insertVendorChange(trx, { practice_id: actor.practiceId, vendor_id: id, changed_at: meta.now, change: 'removed', agreement: v.agreement, changed_by: actor.id });
    await audit.record(trx, staffEvent(actor, meta, { action: 'delete', resource: { type: 'vendor', id }, outcome: 'allowed' }));
  });
}

/** One entry of the practice's registry (its edit form). */
export async function practiceVendor(d: { db: Db; keyring: Keyring }, actor: StaffActor, id: string, now: Date): Promise<VendorView> {
  ensure(authorize(actor, 'practice.manageVendors'), { permission: 'compliance.manage', resource: { type: 'vendor' } });
  return staffCryptoWork(d, actor, async (trx, pc) => {
    const v = await findVendor(trx, id);
    if (!v) throw new AccessDenied({ resource: { type: 'vendor', id } });
    return (await views(trx, pc, [v], now))[0]!;
  });
}

// --- The installation's registry (operators) --------------------------------------------------

const operatorWork = <T>(d: { db: Db; keyring: Keyring }, op: OperatorActor, fn: (trx: Knex.Transaction, pc: PracticeCrypto) => Promise<T>) =>
  d.db.withPractice(INSTALLATION_ID, { kind: 'operator', id: op.id }, (trx) => fn(trx, new PracticeCrypto(d.keyring, trx, INSTALLATION_ID)));

export async function installationRegistry(d: { db: Db; keyring: Keyring }, op: OperatorActor, integrations: readonly ConfiguredIntegration[], now: Date): Promise<{ vendors: VendorView[]; coverage: CoverageLine[] }> {
  return operatorWork(d, op, async (trx, pc) => {
    const vendors = await views(trx, pc, await listVendors(trx), now);
    return { vendors, coverage: coverageMap(integrations, vendors, today(now)) };
  });
}

export async function installationVendor(d: { db: Db; keyring: Keyring }, op: OperatorActor, id: string, now: Date): Promise<VendorView> {
  return operatorWork(d, op, async (trx, pc) => {
    const v = await findVendor(trx, id);
    if (!v) throw new AccessDenied({ resource: { type: 'vendor', id } });
    return (await views(trx, pc, [v], now))[0]!;
  });
}

export async function saveInstallationVendor(d: { db: Db; keyring: Keyring }, op: OperatorActor, id: string | null, input: VendorInput, meta: Meta): Promise<FormResult<string>> {
  const problem = check(input);
  if (problem) return { ok: false, ...problem };
  return operatorWork(d, op, async (trx, pc) => {
    if (input.integration && (await listVendors(trx)).some((v) => v.integration === input.integration && v.id !== id)) return { ok: false, error: 'Another entry already covers this integration; change that one.', field: 'integration' };
    const saved = await writeVendor(trx, pc, INSTALLATION_ID, id, input, op.id, meta.now);
    await audit.record(trx, { practiceId: INSTALLATION_ID, actor: { kind: 'operator', id: op.id }, ip: meta.ip, requestId: meta.requestId, action: id ? 'update' : 'create', resource: { type: 'vendor', id: saved }, outcome: 'allowed' });
    return { ok: true, value: saved };
  });
}

// --- The sub-processor list -------------------------------------------------------------------

export interface SubprocessorList {
  installation: { name: string; service: string; dataSeen: DataSeen }[];
  practice: { name: string; service: string; dataSeen: DataSeen }[];
  changes: { at: Date; name: string; service: string; change: string }[];
}

const listed = (vs: VendorRow[]) => vs.filter((v) => v.listed).map((v) => ({ name: v.name, service: v.service, dataSeen: v.data_seen }));

/** The installation's sub-processors (the public page, when configured), with their dated changes. */
export async function installationSubprocessors(db: Db): Promise<Omit<SubprocessorList, 'practice'>> {
  return db.withPractice(INSTALLATION_ID, { kind: 'system', id: 'subprocessors' }, async (trx) => ({
    installation: listed(await listVendors(trx)),
    changes: (await vendorChanges(trx, 50)).map((c) => ({ at: c.changed_at, name: c.name, service: c.service, change: c.change })),
  }));
}

/** What a practice's staff see: the installation's sub-processors and the practice's own business associates. */
export async function practiceSubprocessors(db: Db, actor: StaffActor): Promise<SubprocessorList> {
  ensure(authorize(actor, 'practice.readSubprocessors'), { resource: { type: 'vendor' } });
  const base = await installationSubprocessors(db);
  const own = await staffWork(db, actor, async (trx) => ({ practice: listed(await listVendors(trx)), changes: (await vendorChanges(trx, 50)).map((c) => ({ at: c.changed_at, name: c.name, service: c.service, change: c.change })) }));
  return { installation: base.installation, practice: own.practice, changes: [...base.changes, ...own.changes].sort((a, b) => b.at.getTime() - a.at.getTime()).slice(0, 50) };
}

// --- The daily check --------------------------------------------------------------------------

/**
 * The coverage check, per tenant: the gaps now (PHI without an agreement in force) against the gaps
 * found last time; one `baa_missing` alert when new ones appear (none again while they stay). A
 * closed gap is forgotten, so one that opens again (an agreement expiring) alerts again.
 */
export async function checkCoverage(db: Db, integrations: readonly ConfiguredIntegration[], practiceIds: readonly string[], now: Date): Promise<{ gaps: number; alerted: number }> {
  let gaps = 0;
  let alerted = 0;
  for (const practiceId of [INSTALLATION_ID, ...practiceIds]) {
    await db.withPractice(practiceId, { kind: 'system', id: 'baa-coverage' }, async (trx) => {
      const vendors = await views(trx, null, await listVendors(trx), now);
      const lines = coverageMap(practiceId === INSTALLATION_ID ? integrations : [], vendors, today(now)).filter(isGap);
      gaps += lines.length;
      const fresh = await replaceGaps(trx, practiceId, lines.map((l) => ({ gap: l.key, state: l.state as 'missing' | 'expired' })), now);
      if (fresh.length) {
        alerted++;
        await raiseAlert(trx, { practiceId, kind: 'baa_missing', severity: 'warning', details: { count: fresh.length } });
      }
    });
  }
  return { gaps, alerted };
}

/** The installation's coverage now (the start-up warning in production). */
export async function installationCoverage(db: Db, integrations: readonly ConfiguredIntegration[], now: Date): Promise<CoverageLine[]> {
  return db.withPractice(INSTALLATION_ID, { kind: 'system', id: 'baa-coverage' }, async (trx) => coverageMap(integrations, await views(trx, null, await listVendors(trx), now), today(now)));
}

/** The installation's gaps as the daily check last found them (the operator console's red line, the start-up warning). */
export async function installationGaps(db: Db): Promise<{ gap: string; state: string }[]> {
  return db.withPractice(INSTALLATION_ID, { kind: 'system', id: 'baa-coverage' }, (trx) => listGaps(trx));
}

// --- The signed agreement (a file in the encrypted store) -------------------------------------

type FileDeps = { db: Db; keyring: Keyring; files: FileStore };

/** Stores the signed copy (replacing an earlier one, whose blob is removed after commit). */
async function attach(trx: Knex.Transaction, pc: PracticeCrypto, files: FileStore, id: string, file: Accepted): Promise<string[]> {
  const v = await findVendor(trx, id);
  if (!v) throw new AccessDenied({ resource: { type: 'vendor', id } });
  const saved = await saveFile(pc, files, Readable.from([file.data]));
  await updateVendor(trx, id, { document_file_id: saved.id, document_type: file.contentType });
  if (!v.document_file_id) return [];
  const blobs = await objectNames(trx, [v.document_file_id]);
  await deleteStoredFiles(trx, [v.document_file_id]);
  return blobs;
}

async function open(trx: Knex.Transaction, pc: PracticeCrypto, files: FileStore, id: string): Promise<{ stream: Readable; contentType: string; filename: string }> {
  const v = await findVendor(trx, id);
  if (!v || !v.document_file_id || !v.document_type) throw new AccessDenied({ resource: { type: 'vendor', id } });
  const ext = v.document_type === 'application/pdf' ? 'pdf' : v.document_type.slice(6);
  return { stream: await openFileDetached(pc, files, v.document_file_id), contentType: v.document_type, filename: `business-associate-agreement-${id.slice(0, 8)}.${ext}` };
}

export async function attachPracticeAgreement(d: FileDeps, actor: StaffActor, id: string, file: Accepted, meta: Meta): Promise<void> {
  ensure(authorize(actor, 'practice.manageVendors'), { permission: 'compliance.manage', resource: { type: 'vendor' } });
  const blobs = await staffCryptoWork(d, actor, async (trx, pc) => {
    const old = await attach(trx, pc, d.files, id, file);
    await audit.record(trx, staffEvent(actor, meta, { action: 'upload', resource: { type: 'vendor', id }, outcome: 'allowed' }));
    return old;
  });
  await Promise.all(blobs.map((b) => d.files.delete(b)));
}

/** The signed copy, as a stream; the download is audited before the first byte. */
export async function openPracticeAgreement(d: FileDeps, actor: StaffActor, id: string, meta: Meta): Promise<{ stream: Readable; contentType: string; filename: string }> {
  ensure(authorize(actor, 'practice.manageVendors'), { permission: 'compliance.manage', resource: { type: 'vendor' } });
  return staffCryptoWork(d, actor, async (trx, pc) => {
    const opened = await open(trx, pc, d.files, id);
    await audit.record(trx, staffEvent(actor, meta, { action: 'download', resource: { type: 'vendor', id }, outcome: 'allowed' }));
    return opened;
  });
}

export async function attachInstallationAgreement(d: FileDeps, op: OperatorActor, id: string, file: Accepted, meta: Meta): Promise<void> {
  const blobs = await operatorWork(d, op, async (trx, pc) => {
    const old = await attach(trx, pc, d.files, id, file);
    await audit.record(trx, { practiceId: INSTALLATION_ID, actor: { kind: 'operator', id: op.id }, ip: meta.ip, requestId: meta.requestId, action: 'upload', resource: { type: 'vendor', id }, outcome: 'allowed' });
    return old;
  });
  await Promise.all(blobs.map((b) => d.files.delete(b)));
}

export async function openInstallationAgreement(d: FileDeps, op: OperatorActor, id: string, meta: Meta): Promise<{ stream: Readable; contentType: string; filename: string }> {
  return operatorWork(d, op, async (trx, pc) => {
    const opened = await open(trx, pc, d.files, id);
    await audit.record(trx, { practiceId: INSTALLATION_ID, actor: { kind: 'operator', id: op.id }, ip: meta.ip, requestId: meta.requestId, action: 'download', resource: { type: 'vendor', id }, outcome: 'allowed' });
    return opened;
  });
}
