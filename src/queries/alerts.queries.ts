import type { Knex } from 'knex';
import { encryptedColumns } from '../crypto/encrypted-columns.js';

/**
 * The only SQL of security alerts (a tenant table: each practice's own, and the installation's
 * under INSTALLATION_ID). Kinds, severities, ids and counts; the acknowledgement note is an
 * encrypted field because people type it.
 */
export const alertSecrets = encryptedColumns('security_alerts', {
  acknowledged_note: { type: 'text' },
});

export type Severity = 'info' | 'warning' | 'critical';

export type AlertRow = {
  id: string;
  kind: string;
  severity: Severity;
  details: Record<string, unknown>;
  created_at: Date;
  acknowledged_by: string | null;
  acknowledged_at: Date | null;
  acknowledged_note: Buffer | null;
  notified_at: Date | null;
};

const COLUMNS = ['id', 'kind', 'severity', 'details', 'created_at', 'acknowledged_by', 'acknowledged_at', 'acknowledged_note', 'notified_at'] as const;

export interface AlertFilter {
  state?: 'open' | 'acknowledged';
  kind?: string;
  severity?: Severity;
}

export async function insertAlert(trx: Knex.Transaction, row: { practice_id: string; kind: string; severity: Severity; details: Record<string, unknown> }): Promise<string> {
  const [inserted] = await trx('security_alerts').insert(row).returning<{ id: string }[]>('id');
  return inserted!.id;
}

/** The current tenant's alerts, newest first. */
export function listAlerts(trx: Knex.Transaction, f: AlertFilter, limit: number): Promise<AlertRow[]> {
  const q = trx('security_alerts').orderBy('created_at', 'desc').limit(limit).select<AlertRow[]>(COLUMNS);
  if (f.state === 'open') q.whereNull('acknowledged_at');
  if (f.state === 'acknowledged') q.whereNotNull('acknowledged_at');
  if (f.kind) q.where({ kind: f.kind });
  if (f.severity) q.where({ severity: f.severity });
  return q;
}

export function findAlert(trx: Knex.Transaction, id: string): Promise<AlertRow | undefined> {
  return trx('security_alerts').where({ id }).forUpdate().first<AlertRow | undefined>(COLUMNS);
}

export function acknowledgeAlert(trx: Knex.Transaction, id: string, change: { acknowledged_by: string; acknowledged_at: Date; acknowledged_note: Buffer | null }): Promise<number> {
  return trx('security_alerts').where({ id }).whereNull('acknowledged_at').update(change);
}

/** Every unacknowledged alert, whatever its severity. */
export async function countOpenAlerts(trx: Knex.Transaction): Promise<number> {
  const [row] = await trx('security_alerts').whereNull('acknowledged_at').count<{ n: string }[]>({ n: '*' });
  return Number(row?.n ?? 0);
}

/** Open alerts of at least warning severity: how many, and the worst. */
export async function openAlertSummary(trx: Knex.Transaction): Promise<{ count: number; critical: number }> {
  const row = await trx('security_alerts')
    .whereNull('acknowledged_at')
    .whereIn('severity', ['warning', 'critical'])
    .first<{ count: string; critical: string }>(trx.raw('count(*) AS count'), trx.raw("count(*) FILTER (WHERE severity = 'critical') AS critical"));
  return { count: Number(row?.count ?? 0), critical: Number(row?.critical ?? 0) };
}

/** Whether an unacknowledged alert of this kind exists (optionally: about this target, or raised after `since`). */
export async function openAlertExists(trx: Knex.Transaction, kind: string, match: { targetId?: string; job?: string; since?: Date } = {}): Promise<boolean> {
  const q = trx('security_alerts').where({ kind }).whereNull('acknowledged_at');
  if (match.targetId) q.whereRaw("details->>'target_id' = ?", [match.targetId]);
  if (match.job) q.whereRaw("details->>'job' = ?", [match.job]);
  if (match.since) q.where('created_at', '>', match.since);
  return Boolean(await q.first('id'));
}

/** Alerts nobody has been told about yet (the outbox job emails the security contact). */
export function unnotifiedAlerts(trx: Knex.Transaction, limit: number): Promise<Pick<AlertRow, 'id' | 'kind' | 'severity' | 'acknowledged_at'>[]> {
  return trx('security_alerts').whereNull('notified_at').orderBy('created_at').limit(limit).select('id', 'kind', 'severity', 'acknowledged_at');
}

export function markAlertsNotified(trx: Knex.Transaction, ids: readonly string[], now: Date): Promise<number> {
  return ids.length ? trx('security_alerts').whereIn('id', ids).update({ notified_at: now }) : Promise.resolve(0);
}

/** Whether an alert of this kind about this target was raised in the last hour (database time). */
export async function alertRaisedWithinHour(trx: Knex.Transaction, kind: string, targetId: string): Promise<boolean> {
  return Boolean(await trx('security_alerts').where({ kind }).whereRaw("details->>'target_id' = ?", [targetId]).where('created_at', '>', trx.raw("now() - interval '1 hour'")).first('id'));
}

/** Serialises the export-volume check of one user within the practice (transaction-scoped). */
export async function lockExportVolume(trx: Knex.Transaction, userId: string): Promise<void> {
  await trx.raw("SELECT pg_advisory_xact_lock(hashtextextended('enamel-export-volume:' || ?, 0))", [userId]);
}
