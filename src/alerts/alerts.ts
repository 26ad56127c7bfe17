import type { Knex } from 'knex';
import { z } from 'zod';
import { DETAIL_FIELDS } from '../audit/event.schema.js';

/**
 * Security alerts: one table, one call. Sign-in lockouts, link lockouts, break-glass, audit
 * verification failures, unusual exports and overdue reviews all raise through raiseAlert().
 * Details use the audit log's closed catalogue (ids, enums, counts): never PHI.
 */
export const ALERT_KINDS = ['audit_verification_failed', 'signin_lockout', 'link_lockout', 'break_glass', 'export_volume', 'review_overdue', 'accounts_disabled'] as const;

const alertSchema = z.strictObject({
  practiceId: z.uuid(),
  kind: z.enum(ALERT_KINDS),
  severity: z.enum(['info', 'warning', 'critical']),
  details: z
    .strictObject(Object.fromEntries(Object.entries(DETAIL_FIELDS).map(([k, v]) => [k, v.optional()])) as { [K in keyof typeof DETAIL_FIELDS]: z.ZodOptional<(typeof DETAIL_FIELDS)[K]> })
    .default({}),
});
export type AlertInput = z.input<typeof alertSchema>;

/** Records an alert in the caller's tenant transaction. Returns its id. */
export async function raiseAlert(trx: Knex.Transaction, input: AlertInput): Promise<string> {
  const a = alertSchema.parse(input);
  const [row] = await trx('security_alerts')
    .insert({ practice_id: a.practiceId, kind: a.kind, severity: a.severity, details: a.details })
    .returning<{ id: string }[]>('id');
  return row!.id;
}

/** Open (unacknowledged) alerts of the current practice, newest first. */
export function openAlerts(trx: Knex.Transaction): Promise<{ id: string; kind: string; severity: string; created_at: Date }[]> {
  return trx('security_alerts').whereNull('acknowledged_at').orderBy('created_at', 'desc').select('id', 'kind', 'severity', 'created_at');
}
