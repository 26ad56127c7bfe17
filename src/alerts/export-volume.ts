import type { Knex } from 'knex';
import { recentActionsOfUser } from '../queries/audit.queries.js';
import { alertRaisedWithinHour, lockExportVolume } from '../queries/alerts.queries.js';
import { findPracticeSettings } from '../queries/practices.queries.js';
import { raiseAlert } from './alerts.js';

/** What counts towards a person's export volume: PHI leaving the system. */
export const EXPORT_VOLUME_ACTIONS = ['export', 'audit_export', 'download', 'print'] as const;

/**
 * SECURITY: after a user's export, download or print is audited (same transaction): when their
 * count in the last hour passes the practice's threshold (practice_settings.export_volume_threshold,
 * default 50), an `export_volume` alert is raised — once an hour per person.
 */
export async function watchExportVolume(trx: Knex.Transaction, practiceId: string, userId: string): Promise<void> {
  const threshold = (await findPracticeSettings(trx))?.export_volume_threshold ?? 50;
  const count = await recentActionsOfUser(trx, userId, EXPORT_VOLUME_ACTIONS);
  if (count <= threshold) return;
  await lockExportVolume(trx, userId);
  if (await alertRaisedWithinHour(trx, 'export_volume', userId)) return;
  await raiseAlert(trx, { practiceId, kind: 'export_volume', severity: 'warning', details: { target_type: 'user', target_id: userId, count } });
}
