import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { KeyProvider } from '../crypto/key-provider.js';
import { createDatabase, dropDatabase } from '../db/provision.js';
import { INSTALLATION_ID, type Db } from '../db/tenant.js';
import { insertRestoreDrill } from '../queries/backup.queries.js';
import { LocalFileStore } from '../storage/file-store.js';
import { BackupInvalidError, listBackups, type Progress } from './backup.js';
import { recordBackupEvent } from './events.js';
import { RestoreCheckError, RestoreRefusedError, restoreBackup, type RestoreReport } from './restore.js';
import type { BackupSettings } from './settings.js';

export interface DrillResult {
  outcome: 'passed' | 'failed';
  /** A fixed token for what failed (and the part or table), never data. */
  failure?: string;
  backupId?: string;
  backupCreatedAt?: Date;
  /** Recovery point: how old the backup was when it was restored. */
  rpoSeconds?: number;
  /** Recovery time: verifying, restoring and checking it. */
  rtoSeconds?: number;
  report?: RestoreReport;
}

/** The failure as a token the drills table accepts: the step, and a part or table name when there is one. */
function failureToken(err: unknown): string {
  if (err instanceof BackupInvalidError) return `verification ${err.problem.part}`.slice(0, 120);
  if (err instanceof RestoreCheckError) return err.step;
  if (err instanceof RestoreRefusedError) return 'refused';
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && /^[A-Za-z0-9_]{1,20}$/.test(code) ? `restore ${code}` : 'restore';
}

/**
 * The restore drill: restores the newest backup into a scratch database and file store, with every
 * check a restore runs (chains, counts, decryption), records the result at installation level
 * (restore_drills, and an audit event), and drops the scratch database again. Never touches the
 * live database's data.
 */
export async function runRestoreDrill(settings: BackupSettings, deps: { db: Db; provider: KeyProvider; now?: () => Date; progress?: Progress }): Promise<DrillResult> {
  const ranAt = deps.now?.() ?? new Date();
  const result = await drill(settings, deps, ranAt);
  await deps.db.withPractice(INSTALLATION_ID, { kind: 'system', id: 'restore-drill' }, (trx) =>
    insertRestoreDrill(trx, {
      ran_at: ranAt,
      backup_id: result.backupId ?? null,
      backup_created_at: result.backupCreatedAt ?? null,
      outcome: result.outcome,
      rpo_seconds: result.rpoSeconds ?? null,
      rto_seconds: result.rtoSeconds ?? null,
      tables: result.report?.tables ?? 0,
      rows: result.report?.rows ?? 0,
      files: result.report?.files ?? 0,
      chains: result.report?.chains.length ?? 0,
      failure: result.failure ?? null,
    }),
  );
  await recordBackupEvent(deps.db, { kind: 'system', id: 'restore-drill' }, {
    action: 'restore_drill',
    outcome: result.outcome === 'passed' ? 'allowed' : 'failed',
    ...(result.backupId ? { backupId: result.backupId } : {}),
    details: { ...(result.rtoSeconds !== undefined ? { seconds: result.rtoSeconds } : {}), ...(result.report ? { count: result.report.rows, files: result.report.files } : {}) },
  });
  return result;
}

async function drill(settings: BackupSettings, deps: { provider: KeyProvider; progress?: Progress }, ranAt: Date): Promise<DrillResult> {
  if (!settings.drill) return { outcome: 'failed', failure: 'not_configured' };
  const [latest] = await listBackups(settings.dir);
  if (!latest) return { outcome: 'failed', failure: 'no_backup' };
  const scratch = `enamel_drill_${randomBytes(6).toString('hex')}`;
  const filesDir = await mkdtemp(path.join(os.tmpdir(), 'enamel-drill-files-'));
  const rpoSeconds = Math.max(0, Math.round((ranAt.getTime() - latest.createdAt.getTime()) / 1000));
  try {
    await createDatabase(settings.drill.adminUrl, scratch);
    const started = Date.now();
    const report = await restoreBackup(latest.file, { ownerUrl: settings.drill.ownerUrl(scratch), runtimeUrl: settings.drill.runtimeUrl(scratch), files: new LocalFileStore(filesDir) }, { provider: deps.provider, ...(deps.progress ? { progress: deps.progress } : {}) });
    const rtoSeconds = Math.max(1, Math.ceil((Date.now() - started) / 1000));
    return { outcome: 'passed', backupId: report.manifest.id, backupCreatedAt: new Date(report.manifest.createdAt), rpoSeconds, rtoSeconds, report };
  } catch (err) {
    return { outcome: 'failed', failure: failureToken(err), backupCreatedAt: latest.createdAt, rpoSeconds };
  } finally {
    await dropDatabase(settings.drill.adminUrl, scratch).catch(() => undefined);
    await rm(filesDir, { recursive: true, force: true });
  }
}
