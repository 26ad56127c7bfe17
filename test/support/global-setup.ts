import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createLogger } from '../../src/config/logger.js';
import { startEmbeddedPostgres, type EmbeddedPostgres } from '../../src/db/embedded.js';
import { createKnex } from '../../src/db/knex.js';
import { migrateLatest } from '../../src/db/migrations.js';
import { OWNER_ROLE, createDatabase, dropDatabase, onDatabase, provisionRoles, urlFor } from '../../src/db/provision.js';
import { setTestCluster, testCluster } from './cluster.js';
import { freePort } from './free-port.js';

/**
 * One PostgreSQL for the whole run: an embedded server in a temporary directory, or the server
 * named by TEST_DATABASE_URL (a role that may create roles and databases). The schema is migrated
 * once into a template; each test file clones it (test/support/db.ts).
 */
let embedded: EmbeddedPostgres | undefined;
let tempDir: string | undefined;

export async function mochaGlobalSetup(): Promise<void> {
  const logger = createLogger('warn');
  let superuserUrl: string;
  if (process.env.TEST_DATABASE_URL) {
    superuserUrl = process.env.TEST_DATABASE_URL;
  } else {
    tempDir = await mkdtemp(path.join(os.tmpdir(), 'enamel-test-'));
    embedded = await startEmbeddedPostgres({ dataDir: tempDir, port: await freePort(), logger });
    superuserUrl = embedded.superuserUrl();
  }
  const passwords = { owner: randomBytes(12).toString('hex'), runtime: randomBytes(12).toString('hex') };
  await provisionRoles(superuserUrl, passwords);
  const prefix = `enamel_t${process.pid}_${randomBytes(3).toString('hex')}`;
  const template = `${prefix}_tpl`;
  await createDatabase(superuserUrl, template);
  const owner = createKnex(urlFor(superuserUrl, OWNER_ROLE, passwords.owner, template), { poolMax: 1 });
  try {
    await migrateLatest(owner);
  } finally {
    await owner.destroy();
  }
  setTestCluster({ superuserUrl, passwords, template, prefix });
}

export async function mochaGlobalTeardown(): Promise<void> {
  const cluster = testCluster();
  await dropDatabase(onDatabase(cluster.superuserUrl, 'postgres'), cluster.template).catch(() => undefined);
  await embedded?.stop();
  if (tempDir) await rm(tempDir, { recursive: true, force: true });
}
