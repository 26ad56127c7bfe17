import { createBackup, pruneBackups } from '../backup/backup.js';
import { runRestoreDrill } from '../backup/drill.js';
import { recordBackupEvent } from '../backup/events.js';
import { raiseInstallationAlert } from '../services/alerts/alerts.service.js';
import { jobNow, type Job, type JobContext } from './scheduler.js';

/** The backup settings, or an error that fails the job loudly (a failing job raises an installation alert). */
function settings(ctx: JobContext): NonNullable<JobContext['backup']> & { sourceUrl: string } {
  const s = ctx.backup;
  if (!s?.sourceUrl) throw new Error('backups are not configured: set BACKUP_DATABASE_URL to a role with BYPASSRLS (docs/BACKUP.md)');
  return { ...s, sourceUrl: s.sourceUrl };
}

/** Every night: a backup of the database and the file store into BACKUP_DIR, then retention. */
export const backupJob: Job = {
  name: 'backup',
  schedule: '43 1 * * *',
  async run(ctx) {
    const s = settings(ctx);
    const made = await createBackup({ url: s.sourceUrl, files: ctx.files }, s.dir, { provider: ctx.provider, now: () => jobNow(ctx), ...(s.method ? { method: s.method } : {}) });
    await recordBackupEvent(ctx.db, { kind: 'system', id: 'backup' }, {
      action: 'backup_create',
      outcome: 'allowed',
      backupId: made.manifest.id,
      details: { count: made.manifest.tables.reduce((n, t) => n + t.rows, 0), files: made.manifest.files.count, bytes: made.bytes, seconds: Math.ceil(made.seconds) },
    });
    const removed = await pruneBackups(s.dir, { keep: s.keep, maxAgeDays: s.maxAgeDays }, jobNow(ctx));
    return { rows: made.manifest.tables.reduce((n, t) => n + t.rows, 0), files: made.manifest.files.count, bytes: made.bytes, removed: removed.length };
  },
};

/**
 * Every week: restores the newest backup into a scratch database and checks it (docs/BACKUP.md);
 * a failed drill raises a critical installation alert.
 */
export const restoreDrillJob: Job = {
  name: 'restore-drill',
  schedule: '13 4 * * 0',
  async run(ctx) {
    if (!ctx.backup) throw new Error('backups are not configured (docs/BACKUP.md)');
    const result = await runRestoreDrill(ctx.backup, { db: ctx.db, provider: ctx.provider, now: () => jobNow(ctx) });
    if (result.outcome === 'failed') {
      // SECURITY: an untested backup is an assumption; a failed drill is an incident for the operators.
      await raiseInstallationAlert(ctx.db, { kind: 'restore_drill_failed', severity: 'critical', details: { job: 'restore-drill' } });
      ctx.logger.error({ failure: result.failure }, 'RESTORE DRILL FAILED');
    }
    return { passed: result.outcome === 'passed' ? 1 : 0, rto_seconds: result.rtoSeconds ?? 0, rpo_seconds: result.rpoSeconds ?? 0, rows: result.report?.rows ?? 0 };
  },
};
