import type { Knex } from 'knex';
import type { Config } from '../src/config/env.js';
import type { Logger } from '../src/config/logger.js';
import type { Keyring } from '../src/crypto/keyring.js';
import type { FileStore } from '../src/storage/file-store.js';
import { DEMO_OWNER_FILE, demoOwnerId, seedDemoOwner } from './demo-owner.js';
import { seedDemoPatients } from './demo-patients.js';
import { seed as seedDemoPractice } from './demo-practice.js';

/**
 * The evaluation demo, after the migrations (server.ts, SEED_DEMO): the practice, its owner with
 * generated credentials (printed once to the terminal, kept in a 0600 file), and fake patients.
 */
export async function seedDemo(owner: Knex, deps: { config: Config; logger: Logger; keyring: Keyring; files: FileStore }): Promise<void> {
  const { config, logger, keyring, files } = deps;
  const result = await seedDemoPractice(owner);
  if (result.created) logger.info('demo practice seeded (fake data) at /p/demo');
  const credentials = await seedDemoOwner(owner, keyring, result.practiceId, config.dataDir, config.publicUrl.toString());
  const demoOwner = await demoOwnerId(owner, result.practiceId);
  if (demoOwner) {
    const made = await seedDemoPatients(owner, keyring, files, result.practiceId, demoOwner);
    if (made) logger.info({ patients: made }, 'demo patients seeded (fake data)');
  }
  if (credentials) {
    // NOTE: printed once to the terminal (never to the log stream) and kept in a 0600 file.
    process.stdout.write(`\n${'='.repeat(78)}\n${credentials}(also written to ${config.dataDir}/${DEMO_OWNER_FILE}, readable only by you)\n${'='.repeat(78)}\n\n`);
  }
}
