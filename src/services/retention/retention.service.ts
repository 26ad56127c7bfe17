import type { Knex } from 'knex';
import { audit } from '../../audit/record.js';
import { shredPractice } from '../../crypto/key-management.js';
import type { Keyring } from '../../crypto/keyring.js';
import { authorize, ensure, type StaffActor } from '../../policies/index.js';
import { allPracticeIds } from '../../queries/practices.queries.js';
import {
  cleanupExpired,
  duePatients,
  findPracticeRetention,
  patientFileIds,
  practiceFileNames,
  purgePatientRows,
  purgePracticeRows,
  setPatientDeletion,
  setPatientHold,
  setPracticeHold,
  practicePurgeDue,
  auditPurgeDue,
  knownObjects,
  purgePracticeAudit,
} from '../../queries/retention.queries.js';
import { createCheckpoint } from '../../audit/checkpoints.js';
import { INSTALLATION_ID, type Db } from '../../db/tenant.js';
import { deleteStoredFiles, objectNames } from '../../queries/documents.queries.js';
import type { FileStore } from '../../storage/file-store.js';
import { loadPatientRecord } from '../patients/patients.service.js';
import { staffEvent as event, staffWork as work } from '../staff-work.js';
import type { FormResult, Meta } from '../../shared/types.js';

/**
 * Retention and deletion (HIPAA §164.310(d)(2), §164.316(b)(2)):
 * - a practice asks to delete a patient: the record is hidden at once and purged by the retention
 *   job after the practice's grace period, unless the patient or the practice is under legal hold;
 * - an operator terminates a practice: during the tail it works as before (and can export); after
 *   it, the job shreds the practice's data keys, then purges its rows and files;
 * - expired sessions, links, reset tokens and invitations are cleaned up.
 * Legal holds block every deletion and are audited. The database enforces the same rules
 * (migration 18: the purge functions and the immutability triggers).
 */

const BATCH = 50;

export interface RetentionDeps {
  db: Db;
  keyring: Keyring;
  files: FileStore;
}

async function patientForCompliance(trx: Knex.Transaction, actor: StaffActor, patientId: string, now: Date) {
  const { row } = await loadPatientRecord(trx, actor, patientId, now);
  ensure(authorize(actor, 'compliance.manageRetention', { practiceId: row.practice_id }), { resource: { type: 'patient', id: patientId }, patientId, permission: 'compliance.manage' });
  return row;
}

/** Asks for a patient's deletion: hidden now, purged after the grace period (unless held). */
export async function requestPatientDeletion(db: Db, actor: StaffActor, patientId: string, meta: Meta): Promise<FormResult<{ purgeAfter: Date }>> {
  return work(db, actor, async (trx) => {
    const row = await patientForCompliance(trx, actor, patientId, meta.now);
    if (row.deletion_requested_at) return { ok: false, error: 'Deletion of this patient is already requested.' };
    const { patient_purge_grace_days: days } = await findPracticeRetention(trx);
    const purgeAfter = new Date(meta.now.getTime() + days * 86_400_000);
    await setPatientDeletion(trx, patientId, { deletion_requested_at: meta.now, deletion_requested_by: actor.id, purge_after: purgeAfter });
    await audit.record(trx, event(actor, meta, { action: 'deletion_request', resource: { type: 'patient', id: patientId }, patientId, outcome: 'allowed', details: { count: days } }));
    return { ok: true, value: { purgeAfter } };
  });
}

export async function cancelPatientDeletion(db: Db, actor: StaffActor, patientId: string, meta: Meta): Promise<void> {
  await work(db, actor, async (trx) => {
    const row = await patientForCompliance(trx, actor, patientId, meta.now);
    if (!row.deletion_requested_at) return;
    await setPatientDeletion(trx, patientId, { deletion_requested_at: null, deletion_requested_by: null, purge_after: null });
    await audit.record(trx, event(actor, meta, { action: 'deletion_cancel', resource: { type: 'patient', id: patientId }, patientId, outcome: 'allowed' }));
  });
}

export interface PatientRetentionView {
  deletionRequestedAt: Date | null;
  purgeAfter: Date | null;
  legalHold: boolean;
  practiceHold: boolean;
  graceDays: number;
}

/** A patient's deletion and hold state (ids and dates only: no patient data on the page). */
export async function patientRetention(db: Db, actor: StaffActor, patientId: string, meta: Meta): Promise<PatientRetentionView> {
  return work(db, actor, async (trx) => {
    const row = await patientForCompliance(trx, actor, patientId, meta.now);
    const practice = await findPracticeRetention(trx);
    return { deletionRequestedAt: row.deletion_requested_at, purgeAfter: row.purge_after, legalHold: row.legal_hold_at !== null, practiceHold: practice.legal_hold_at !== null, graceDays: practice.patient_purge_grace_days };
  });
}

/** Puts a patient under legal hold, or releases it. */
export async function holdPatient(db: Db, actor: StaffActor, patientId: string, on: boolean, meta: Meta): Promise<void> {
  await work(db, actor, async (trx) => {
    const row = await patientForCompliance(trx, actor, patientId, meta.now);
    if ((row.legal_hold_at !== null) === on) return;
    await setPatientHold(trx, patientId, on ? { legal_hold_at: meta.now, legal_hold_by: actor.id } : { legal_hold_at: null, legal_hold_by: null });
    await audit.record(trx, event(actor, meta, { action: on ? 'legal_hold' : 'legal_hold_release', resource: { type: 'patient', id: patientId }, patientId, outcome: 'allowed' }));
  });
}

/** A legal hold on the whole practice (blocks every patient purge and the practice's own purge). */
export async function holdPractice(db: Db, actor: StaffActor, on: boolean, meta: Meta): Promise<void> {
  ensure(authorize(actor, 'compliance.holdPractice'), { permission: 'compliance.manage' });
  await work(db, actor, async (trx) => {
    if ((await setPracticeHold(trx, on ? meta.now : null)) === 0) return;
    await audit.record(trx, event(actor, meta, { action: on ? 'legal_hold' : 'legal_hold_release', resource: { type: 'practice', id: actor.practiceId }, outcome: 'allowed' }));
  });
}

export interface RetentionStatus {
  legalHoldAt: Date | null;
  terminatedAt: Date | null;
  purgeAfter: Date | null;
  patientPurgeGraceDays: number;
  inactiveAccountDays: number;
  auditRetentionYears: number;
}

export async function retentionStatus(db: Db, actor: StaffActor): Promise<RetentionStatus> {
  ensure(authorize(actor, 'compliance.manageRetention', { practiceId: actor.practiceId }), { permission: 'compliance.manage' });
  return work(db, actor, async (trx) => {
    const r = await findPracticeRetention(trx);
    return { legalHoldAt: r.legal_hold_at, terminatedAt: r.terminated_at, purgeAfter: r.purge_after, patientPurgeGraceDays: r.patient_purge_grace_days, inactiveAccountDays: r.inactive_account_days, auditRetentionYears: r.audit_retention_years };
  });
}

// ---- The jobs ------------------------------------------------------------------------------

/**
 * Purges every patient past grace and not held, one transaction each (so one failure leaves the
 * others done and nothing half-done): rows through the purge function, the stored-file rows, an
 * audit event; the blobs after commit.
 */
export async function purgeDuePatients(d: RetentionDeps, now: Date): Promise<{ purged: number }> {
  let purged = 0;
  for (const practiceId of await allPracticeIds(d.db.knex)) {
    const due = await d.db.withPractice(practiceId, { kind: 'system', id: 'retention' }, (trx) => duePatients(trx, now, BATCH));
    for (const patientId of due) {
      const blobs = await d.db.withPractice(practiceId, { kind: 'system', id: 'retention' }, async (trx) => {
        const fileIds = await patientFileIds(trx, patientId);
        const names = await objectNames(trx, fileIds);
        const counts = await purgePatientRows(trx, patientId, now);
        await deleteStoredFiles(trx, fileIds);
        await audit.record(trx, { practiceId, actor: { kind: 'system', id: 'retention' }, action: 'purge', resource: { type: 'patient', id: patientId }, patientId, outcome: 'allowed', details: { count: Object.values(counts).reduce((a, b) => a + b, 0) } });
        return names;
      });
      await Promise.all(blobs.map((b) => d.files.delete(b)));
      purged++;
    }
  }
  return { purged };
}

/**
 * Purges each terminated practice whose tail has passed: its data keys are shredded first (so even
 * a backup of the rows is unreadable), then its rows go, then its file blobs. The audit log stays
 * (ids and enums only, no PHI: HIPAA keeps documentation six years) with its checkpoints, its
 * verifications, the key events and the destroyed key rows; its head is signed as the data goes,
 * and the purge itself is its last event. purgeExpiredAuditTrails() removes it years later.
 */
export async function purgeTerminatedPractices(d: RetentionDeps, now: Date): Promise<{ practices: number }> {
  let done = 0;
  const actor = { kind: 'system', id: 'retention' } as const;
  for (const practiceId of await allPracticeIds(d.db.knex)) {
    if (!(await d.db.withPractice(practiceId, actor, (trx) => practicePurgeDue(trx, now)))) continue;
    const names = await d.db.withPractice(practiceId, actor, (trx) => practiceFileNames(trx));
    await createCheckpoint(d.db, d.keyring.provider, practiceId);
    await shredPractice(d, practiceId, actor);
    await d.db.withPractice(practiceId, actor, async (trx) => {
      const counts = await purgePracticeRows(trx, practiceId, now);
      await audit.record(trx, { practiceId, actor, action: 'purge', resource: { type: 'practice', id: practiceId }, outcome: 'allowed', details: { count: Object.values(counts).reduce((a, b) => a + b, 0) } });
    });
    await createCheckpoint(d.db, d.keyring.provider, practiceId);
    await Promise.all(names.map((b) => d.files.delete(b)));
    done++;
  }
  return { practices: done };
}

/**
 * SECURITY: the end of a purged practice's audit trail, once its audit retention (years after
 * termination, at least six) has passed and it is not under legal hold: every event is sealed, the
 * final head is signed (the checkpoints stay for good), then the database's purge function removes
 * the events — refusing unless due, sealed and signed. Recorded in the installation's chain.
 */
export async function purgeExpiredAuditTrails(d: RetentionDeps, now: Date): Promise<{ audit_trails: number }> {
  let done = 0;
  const actor = { kind: 'system', id: 'retention' } as const;
  for (const practiceId of await allPracticeIds(d.db.knex)) {
    if (!(await d.db.withPractice(practiceId, actor, (trx) => auditPurgeDue(trx, now)))) continue;
    await createCheckpoint(d.db, d.keyring.provider, practiceId);
    const counts = await d.db.withPractice(practiceId, actor, (trx) => purgePracticeAudit(trx, practiceId, now));
    await d.db.withPractice(INSTALLATION_ID, actor, (trx) =>
      audit.record(trx, { practiceId: INSTALLATION_ID, actor, action: 'purge', resource: { type: 'audit_log', id: String(counts.head_seq ?? 0) }, outcome: 'allowed', details: { count: counts.audit_events ?? 0, target_type: 'practice', target_id: practiceId } }),
    );
    done++;
  }
  return { audit_trails: done };
}

/** How old a blob without a row must be before the sweep removes it (an upload in flight has its row within seconds). */
export const ORPHAN_BLOB_AGE_MS = 3_600_000;

/**
 * SECURITY (no half state): removes blobs no stored_files row names — what a process killed between
 * writing a blob and committing its row leaves behind — once they are an hour old. Returns how many.
 */
export async function sweepOrphanBlobs(d: { db: Db; files: FileStore }, now: Date): Promise<number> {
  let removed = 0;
  let batch: string[] = [];
  const flush = async () => {
    const known = await knownObjects(d.db.knex, batch);
    for (const name of batch) {
      if (known.has(name)) continue;
      await d.files.delete(name);
      removed++;
    }
    batch = [];
  };
  for await (const name of d.files.listObjects(new Date(now.getTime() - ORPHAN_BLOB_AGE_MS))) {
    batch.push(name);
    if (batch.length >= 500) await flush();
  }
  await flush();
  return removed;
}

/** Expired sessions, patient links (90 days after expiry), reset tokens, invitations, temporary files older than a day, blobs without a row. */
export async function cleanupExpiredRecords(d: { db: Db; files: FileStore }, now: Date): Promise<Record<string, number>> {
  const db = d.db;
  const totals: Record<string, number> = { temp_files: await d.files.removeStaleTemp(new Date(now.getTime() - 86_400_000)), orphan_blobs: await sweepOrphanBlobs(d, now) };
  const add = (counts: Record<string, number>) => Object.entries(counts).forEach(([k, v]) => (totals[k] = (totals[k] ?? 0) + v));
  add(await cleanupExpired.global(db.knex, now));
  for (const practiceId of await allPracticeIds(db.knex)) add(await db.withPractice(practiceId, { kind: 'system', id: 'cleanup' }, (trx) => cleanupExpired.practice(trx, now)));
  return totals;
}
