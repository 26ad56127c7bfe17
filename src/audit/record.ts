import type { Knex } from 'knex';
import { EXPORT_VOLUME_ACTIONS, watchExportVolume } from '../alerts/export-volume.js';
import { sendWithoutWaiting } from '../db/tenant.js';
import { auditEventSchema, type AuditEventInput } from './event.schema.js';

export class AuditEventError extends Error {
  override name = 'AuditEventError';
}

/**
 * SECURITY: the one way to write an audit event — inside the same transaction as the access, before
 * the response. The event is parsed by a closed schema (ids, enums, counts only); anything else is
 * refused with an AuditEventError naming the field, never echoing its value. If this insert fails
 * the caller's transaction fails with it: PHI is never served without its audit row.
 */
export async function record(trx: Knex.Transaction, input: AuditEventInput): Promise<void> {
  const parsed = auditEventSchema.safeParse(input);
  if (!parsed.success) {
    const fields = [...new Set(parsed.error.issues.map((i) => i.path.join('.') || '(event)'))];
    throw new AuditEventError(`audit event refused: invalid ${fields.join(', ')}`);
  }
  const e = parsed.data;
  const insert = trx('audit_events').insert({
    practice_id: e.practiceId,
    actor_type: e.actor.kind,
    actor_id: e.actor.id ?? null,
    action: e.action,
    resource_type: e.resource?.type ?? null,
    resource_id: e.resource?.id ?? null,
    patient_id: e.patientId ?? null,
    outcome: e.outcome,
    client_ip: e.ip ?? null,
    request_id: e.requestId ?? null,
    reason: e.reason ?? null,
    details: e.details,
  });
  // PERF: inside withPractice the insert goes out with the next statement or with COMMIT, and is
  // confirmed before withPractice returns: a failed insert rolls the whole transaction back and
  // throws (db/tenant.ts). The work's result — the PHI — never reaches a caller without its row.
  if (e.actor.kind === 'user' && e.outcome === 'allowed' && VOLUME_ACTIONS.has(e.action)) {
    await insert;
    // SECURITY: PHI leaving the system counts towards the person's hourly export volume (an alert past the threshold).
    await watchExportVolume(trx, e.practiceId, e.actor.id);
    return;
  }
  return sendWithoutWaiting(trx, insert);
}

const VOLUME_ACTIONS: ReadonlySet<string> = new Set(EXPORT_VOLUME_ACTIONS);

/** The audit API: `audit.record(trx, event)`. */
export const audit = { record };

export type { AuditEventInput };
