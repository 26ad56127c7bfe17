import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Knex } from 'knex';
import { encryptedColumns } from '../../src/crypto/encrypted-columns.js';
import { LocalKeyProvider } from '../../src/crypto/key-provider.js';
import { Keyring } from '../../src/crypto/keyring.js';
import type { KeyServices } from '../../src/crypto/key-management.js';
import { LocalFileStore } from '../../src/storage/file-store.js';
import type { TestDatabase } from './db.js';

/** A table with encrypted columns, standing in for the patient tables that come later. */
export const testRecords = encryptedColumns('test_records', {
  secret: { type: 'text' },
  last_name: { type: 'text', blindIndex: 'name' },
  dob: { type: 'date', blindIndex: 'dob' },
  extra: { type: 'json' },
});

export async function createTestRecordsTable(owner: Knex): Promise<void> {
  await owner.raw(`
    CREATE TABLE test_records (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      practice_id uuid NOT NULL REFERENCES practices(id),
      secret bytea, last_name bytea, last_name_bidx bytea, dob bytea, dob_bidx bytea, extra bytea
    );
    SELECT enamel_tenant_table('test_records');
    GRANT SELECT, INSERT, UPDATE, DELETE ON test_records TO enamel_app;
  `);
}

export function newKek(): string {
  return randomBytes(32).toString('base64');
}

export interface CryptoFixture extends KeyServices {
  keks: Record<string, string>;
  filesDir: string;
  keysDir: string;
  /** A key provider over the same KEYS_DIR with other KEKs (KEK rotation tests). */
  provider(keks: Record<string, string>, active: string): LocalKeyProvider;
  cleanup(): Promise<void>;
}

export async function buildCryptoFixture(t: TestDatabase, keks: Record<string, string> = { k1: newKek() }, active = 'k1'): Promise<CryptoFixture> {
  const filesDir = await mkdtemp(path.join(os.tmpdir(), 'enamel-files-'));
  const keysDir = path.join(filesDir, 'keys');
  const provider = (k: Record<string, string>, a: string): LocalKeyProvider => new LocalKeyProvider(k, a, { practiceKeysDir: keysDir });
  return {
    db: t.db,
    keyring: new Keyring(provider(keks, active)),
    files: new LocalFileStore(path.join(filesDir, 'blobs')),
    keks,
    filesDir: path.join(filesDir, 'blobs'),
    keysDir,
    provider,
    cleanup: () => rm(filesDir, { recursive: true, force: true }),
  };
}
