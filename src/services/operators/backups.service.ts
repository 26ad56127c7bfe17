import { listBackups } from '../../backup/backup.js';
import { INSTALLATION_ID, type Db } from '../../db/tenant.js';
import { recentRestoreDrills, type RestoreDrillRow } from '../../queries/backup.queries.js';
import type { OperatorActor } from './operators.service.js';

/** What the operator console says about backups (no patient data: files, sizes, counts, times). */
export interface BackupsOverview {
  dir: string;
  keep: number;
  maxAgeDays: number;
  /** Whether a backup can be taken at all (the embedded database, or BACKUP_DATABASE_URL set). */
  configured: boolean;
  drillConfigured: boolean;
  backups: { name: string; createdAt: Date; bytes: number }[];
  drills: RestoreDrillRow[];
  /** The newest drill that passed, if any. */
  lastPassed: RestoreDrillRow | undefined;
}

export async function backupsOverview(db: Db, op: OperatorActor, settings: Omit<BackupsOverview, 'backups' | 'drills' | 'lastPassed'>): Promise<BackupsOverview> {
  const backups = (await listBackups(settings.dir)).map((b) => ({ name: b.file.slice(settings.dir.length + 1), createdAt: b.createdAt, bytes: b.bytes }));
  const drills = await db.withPractice(INSTALLATION_ID, { kind: 'operator', id: op.id }, (trx) => recentRestoreDrills(trx, 30));
  return { ...settings, backups, drills, lastPassed: drills.find((x) => x.outcome === 'passed') };
}
