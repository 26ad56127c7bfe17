import { audit } from '../audit/record.js';
import type { AuditEventInput } from '../audit/event.schema.js';
import { INSTALLATION_ID, type Actor, type Db } from '../db/tenant.js';

/**
 * SECURITY: creating, verifying and restoring backups, and every restore drill, are audited in the
 * installation's own chain (seed 000: "backup restoration events are logged") — ids and numbers only.
 */
export async function recordBackupEvent(
  db: Db,
  actor: Actor & { kind: 'system' | 'operator'; id: string },
  e: { action: 'backup_create' | 'backup_verify' | 'backup_restore' | 'restore_drill'; outcome: 'allowed' | 'failed'; backupId?: string; details?: AuditEventInput['details'] },
): Promise<void> {
  await db.withPractice(INSTALLATION_ID, actor, (trx) =>
    audit.record(trx, {
      practiceId: INSTALLATION_ID,
      actor: { kind: actor.kind, id: actor.id },
      action: e.action,
      outcome: e.outcome,
      ...(e.backupId ? { resource: { type: 'backup', id: e.backupId } } : {}),
      details: e.details ?? {},
    }),
  );
}
