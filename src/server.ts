import { configuredIntegrations, isGap } from './compliance/coverage.js';
import { installationCoverage } from './services/vendors/vendors.service.js';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { Express } from 'express';
import { createApp } from './app.js';
import { ConfigError, configWarnings, loadConfig, type Config } from './config/env.js';
import { createLogger, type Logger } from './config/logger.js';
import { startSealer } from './audit/sealer.js';
import { JOBS } from './jobs/index.js';
import { startScheduler } from './jobs/scheduler.js';
import { backupSettings } from './backup/settings.js';
import { createTransport } from './messaging/transports.js';
import { createSessionStore } from './auth/session.js';
import { createCrypto } from './crypto/index.js';
import { fillMissingIndexes, resumeAllRotations } from './crypto/key-management.js';
import { raiseInstallationAlert } from './services/alerts/alerts.service.js';
import { seedDemo } from '../seeds/demo.js';
import { syncPracticeDefaults } from './services/practices/practice-defaults.js';
import { openDatabase, type OpenDatabase } from './db/bootstrap.js';

/**
 * SECURITY: TLS 1.2 minimum with forward-secret AEAD suites only (TLS 1.3 suites are all AEAD and
 * chosen by Node). Used only when TLS_CERT_FILE/TLS_KEY_FILE are set; normally the reverse proxy
 * terminates TLS.
 */
const TLS12_CIPHERS = [
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');

function createServer(app: Express, config: Config): http.Server {
  if (!config.tls) return http.createServer(app);
  return https.createServer(
    {
      cert: readFileSync(config.tls.certFile),
      key: readFileSync(config.tls.keyFile),
      minVersion: 'TLSv1.2',
      ciphers: TLS12_CIPHERS,
      honorCipherOrder: true,
    },
    app,
  );
}

/** Starts everything; returns a stop function that drains requests, closes the pool, then stops the database. */
export async function start(config: Config, logger: Logger): Promise<{ server: http.Server; stop: () => Promise<void> }> {
  if (config.database.kind === 'embedded') {
    logger.warn(
      '*** EVALUATION MODE: embedded PostgreSQL under %s with locally generated credentials. Not for real patient data. ***',
      config.dataDir,
    );
  }
  for (const warning of configWarnings(config)) logger.warn(warning);
  // Keys first: production without proper KEKs stops here, before touching the database.
  const crypto = await createCrypto(config, logger);
  const database: OpenDatabase = await openDatabase(config, logger, {
    ...(config.seedDemo ? { afterMigrate: (owner) => seedDemo(owner, { config, logger, keyring: crypto.keyring, files: crypto.files }) } : {}),
    afterOpen: syncPracticeDefaults,
  });
  // CASE: a re-encryption interrupted by a crash or restart continues in the background.
  const background = new AbortController();
  const resuming = resumeAllRotations({ db: database.db, keyring: crypto.keyring, files: crypto.files }, { kind: 'system', id: 'key-rotation' }, {
    signal: background.signal,
    onProgress: (j) => logger.info({ purpose: j.purpose, done: j.done, total: j.total }, 're-encryption progress'),
  }).then(
    async ({ resumed, failed }) => {
      if (resumed > 0) logger.info({ jobs: resumed }, 're-encryption resumed and finished');
      for (const f of failed) logger.error({ jobId: f.jobId, code: f.code, table: f.table }, 're-encryption failed; fix the cause, then run `enamel keys resume`');
      if (failed.length > 0) await raiseInstallationAlert(database.db, { kind: 'job_failed', severity: 'critical', details: { job: 'key-rotation', count: failed.length } });
    },
    (err: unknown) => logger.error({ err }, 're-encryption failed; run `enamel keys resume`'),
  ).then(async () => {
    // CASE: rows written before a search index existed (migration 21) get it in the background.
    if (background.signal.aborted) return;
    const filled = await fillMissingIndexes({ db: database.db, keyring: crypto.keyring, files: crypto.files }, { kind: 'system', id: 'key-rotation' }, { signal: background.signal });
    if (filled > 0) logger.info({ rows: filled }, 'search indexes filled in');
  }).catch((err: unknown) => logger.error({ err }, 'filling in search indexes failed; run `enamel keys resume`'));
  // SECURITY: audit events are sealed into their hash chains within about a second.
  const stopSealer = startSealer(database.db, logger);
  // SECURITY: in production, a service that sees PHI without an agreement in force is said at start (and alerted daily).
  if (config.isProduction) {
    const coverage = await installationCoverage(database.db, configuredIntegrations(config), new Date());
    for (const l of coverage.filter(isGap)) logger.warn({ integration: l.key, state: l.state }, 'a service that holds or receives PHI has no business associate agreement in force: record it on /operator/vendors');
  }
  const stopScheduler = startScheduler(JOBS, { db: database.db, provider: crypto.keyring.provider, keyring: crypto.keyring, transport: createTransport(config, logger), files: crypto.files, publicUrl: config.publicUrl, logger, backup: backupSettings(config, database), integrations: configuredIntegrations(config) });
  const sessionStore = createSessionStore(database.runtimeUrl, database.db.knex);
  const app = createApp({ config, logger, db: database.db, keyring: crypto.keyring, sessionStore, files: crypto.files });
  const closeStore = (): Promise<void> => (sessionStore as unknown as { close(): Promise<void> }).close();
  const server = createServer(app, config);
  server.headersTimeout = 20_000;
  server.requestTimeout = 60_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => resolve());
  }).catch(async (err: unknown) => {
    background.abort();
    await Promise.all([resuming, stopSealer(), stopScheduler(), closeStore()]);
    await database.close();
    throw err;
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  logger.info({ port, host: config.host, url: config.publicUrl.toString() }, 'Enamel is listening');

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      // 1. stop accepting; idle keep-alive sockets close now, busy ones after their response.
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      const force = setTimeout(() => server.closeAllConnections(), config.shutdownTimeoutMs);
      await closed;
      clearTimeout(force);
      background.abort();
      await Promise.all([resuming, stopSealer(), stopScheduler(), closeStore()]);
      // 2. then the pool, 3. then the embedded database.
      await database.close();
      logger.info('shut down cleanly');
    })();
    return stopping;
  };
  return { server, stop };
}

async function main(): Promise<void> {
  let config: Config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
  const logger = createLogger(config.logLevel);
  let running: Awaited<ReturnType<typeof start>>;
  try {
    running = await start(config, logger);
  } catch (err) {
    logger.fatal({ err }, 'start-up failed');
    process.stderr.write(`Enamel could not start: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  }
  const onSignal = (signal: NodeJS.Signals): void => {
    logger.info({ signal }, 'shutting down');
    running.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
}

// Run when executed directly (node dist/src/server.js, tsx src/server.ts), not when imported by tests.
const entry = process.argv[1] ?? '';
if (/[\\/]server\.(ts|js)$/.test(entry)) {
  await main();
}
