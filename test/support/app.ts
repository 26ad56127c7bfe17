import { Writable } from 'node:stream';
import type { Express } from 'express';
import { createApp } from '../../src/app.js';
import { loadConfig, type Config } from '../../src/config/env.js';
import { createLogger } from '../../src/config/logger.js';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { LocalKeyProvider } from '../../src/crypto/key-provider.js';
import { Keyring } from '../../src/crypto/keyring.js';
import { LocalFileStore, type FileStore } from '../../src/storage/file-store.js';
import type { TestDatabase } from './db.js';
import { collectLogs } from './phi-scan.js';

/** Collects the JSON lines a logger writes, so tests can assert what is (not) logged. */
export function captureLogs(): { lines: Record<string, unknown>[]; stream: Writable } {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split('\n')) if (l.trim()) lines.push(JSON.parse(l) as Record<string, unknown>);
      done();
    },
  });
  return { lines, stream };
}

export function testConfig(env: NodeJS.ProcessEnv = {}): Config {
  return loadConfig({ NODE_ENV: 'test', DATABASE_URL: 'postgres://unused@127.0.0.1/unused', BACKUP_DIR: path.join(os.tmpdir(), `enamel-test-backups-${process.pid}`), ...env });
}

/** The real app, wired to a test database, logging into memory. */
export function buildTestApp(
  t: Pick<TestDatabase, 'db' | 'sessionStore'>,
  env: NodeJS.ProcessEnv = {},
  options: { keyring?: Keyring; clock?: () => number; files?: FileStore } = {},
): { app: Express; logs: Record<string, unknown>[]; config: Config } {
  const config = testConfig(env);
  const { lines, stream } = captureLogs();
  collectLogs(lines);
  const keyring = options.keyring ?? new Keyring(new LocalKeyProvider({ k1: randomBytes(32).toString('base64') }, 'k1', { practiceKeysDir: path.join(os.tmpdir(), `enamel-test-keys-${process.pid}`) }));
  const files = options.files ?? new LocalFileStore(path.join(os.tmpdir(), `enamel-test-files-${process.pid}`));
  const app = createApp({ config, logger: createLogger('debug', stream), db: t.db, keyring, sessionStore: t.sessionStore(), files, ...(options.clock ? { clock: options.clock } : {}) });
  return { app, logs: lines, config };
}
