/**
 * Fills a practice with fake patients for benchmarks (sealed exactly like the app seals them).
 *
 *   DATABASE_URL=postgres://enamel_app:…@host/db KEK_FILE=… npm run bench:patients -- demo 1000000
 *
 * Arguments: the practice's slug (default demo) and how many (default 1,000,000). Uses the same
 * configuration as the app (DATABASE_URL and the KEK settings); prints progress and the rate.
 */
import { loadConfig } from '../src/config/env.js';
import { createLogger } from '../src/config/logger.js';
import { createCrypto } from '../src/crypto/index.js';
import { createKnex } from '../src/db/knex.js';
import { createDb } from '../src/db/tenant.js';
import { findActivePracticeIdBySlug } from '../src/queries/practices.queries.js';
import { generatePatients } from '../seeds/patient-generator.js';

const [slug = 'demo', countArg = '1000000'] = process.argv.slice(2);
const count = Number(countArg);
if (!Number.isInteger(count) || count < 1) throw new Error('count must be a positive integer');
const config = loadConfig();
if (config.database.kind !== 'external') throw new Error('set DATABASE_URL (the runtime role) to the database to fill');
const logger = createLogger('warn');
const knex = createKnex(config.database.runtimeUrl, { poolMax: 2 });
try {
  const db = createDb(knex);
  const { keyring } = await createCrypto(config, logger);
  const practiceId = await findActivePracticeIdBySlug(knex, slug);
  if (!practiceId) throw new Error(`no active practice /p/${slug}`);
  const locations = await db.withPractice(practiceId, { kind: 'system', id: 'bench' }, (trx) => trx('locations').pluck('id'));
  const started = performance.now();
  await generatePatients((work) => db.withPractice(practiceId, { kind: 'system', id: 'bench' }, work), keyring, practiceId, locations, count, {
    seed: Date.now() % 100_000,
    batch: 1000,
    onProgress: (done) => {
      if (done % 50_000 === 0 || done === count) console.log(`${done.toLocaleString('en-US')} patients, ${Math.round(done / ((performance.now() - started) / 1000))}/s`);
    },
  });
} finally {
  await knex.destroy();
}
