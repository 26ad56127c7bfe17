import type { BackupSettings } from '../../src/backup/settings.js';
import { OWNER_ROLE, RUNTIME_ROLE, onDatabase, urlFor } from '../../src/db/provision.js';
import { testCluster } from './cluster.js';

/** Backup settings for a test database: its superuser reads every practice; scratch drill databases on the test server. */
export function testBackupSettings(database: string, dir: string, over: Partial<BackupSettings> = {}): BackupSettings {
  const c = testCluster();
  return {
    dir,
    keep: 14,
    maxAgeDays: 30,
    sourceUrl: onDatabase(c.superuserUrl, database),
    drill: { adminUrl: c.superuserUrl, ownerUrl: (db) => urlFor(c.superuserUrl, OWNER_ROLE, c.passwords.owner, db), runtimeUrl: (db) => urlFor(c.superuserUrl, RUNTIME_ROLE, c.passwords.runtime, db) },
    ...over,
  };
}
