import { insertStoredFile, storedFileObject } from '../queries/keys.queries.js';
import { randomUUID } from 'node:crypto';
import { PassThrough, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterRollback } from '../db/tenant.js';
import type { FileStore } from '../storage/file-store.js';
import type { PracticeCrypto } from './encrypted-columns.js';
import { KeyNotFoundError } from './errors.js';
import { FileDecryptor, FileEncryptor } from './file-cipher.js';

/**
 * Encrypted files: a stream in, an encrypted blob in the FileStore, a `stored_files` row in the
 * caller's tenant transaction. Reading streams the blob back through the decryptor.
 *
 * A blob whose transaction rolls back after save() (an audit insert failing, say) is removed once
 * the rollback is done (afterRollback); a process killed between the write and the commit leaves
 * one, which the cleanup job's orphan sweep removes. Deleting a row removes its blob after commit.
 */
export interface SavedFile {
  id: string;
  plaintextSize: number;
}

export async function saveFile(pc: PracticeCrypto, store: FileStore, source: Readable): Promise<SavedFile> {
  const id = randomUUID();
  const { version, key } = await pc.keyring.active(pc.trx, pc.practiceId, 'files');
  const encryptor = new FileEncryptor(key, version, { practiceId: pc.practiceId, fileId: id });
  const { objectName } = await store.put(source, encryptor);
  // SECURITY (no half state): the blob goes if the transaction that would keep its row rolls back.
  afterRollback(pc.trx, () => store.delete(objectName));
  try {
    await insertStoredFile(pc.trx, {
      id,
      practice_id: pc.practiceId,
      object_name: objectName,
      key_version: version,
      plaintext_size: encryptor.plaintextBytes,
    });
  } catch (err) {
    await store.delete(objectName);
    throw err;
  }
  return { id, plaintextSize: encryptor.plaintextBytes };
}

/** A plaintext stream of a stored file; it errors (DecryptionError) if the blob was tampered with. */
export async function openFile(pc: PracticeCrypto, store: FileStore, fileId: string): Promise<Readable> {
  const row = await storedFileObject(pc.trx, fileId);
  if (!row) throw new KeyNotFoundError(`no stored file ${fileId} in this practice`);
  return decryptObject(pc, store, row.object_name, fileId);
}

/**
 * Like openFile, but the stream needs nothing from the transaction once this returns (the file key
 * is fetched now): for a large file streamed to a client after the audit row has committed.
 */
export async function openFileDetached(pc: PracticeCrypto, store: FileStore, fileId: string): Promise<Readable> {
  const row = await storedFileObject(pc.trx, fileId);
  if (!row) throw new KeyNotFoundError(`no stored file ${fileId} in this practice`);
  const key = await pc.keyring.version(pc.trx, pc.practiceId, 'files', row.key_version);
  const decryptor = new FileDecryptor(async (v) => (v === row.key_version ? key : pc.keyring.version(pc.trx, pc.practiceId, 'files', v)), { practiceId: pc.practiceId, fileId });
  const out = new PassThrough();
  pipeline(store.get(row.object_name), decryptor, out).catch((err: unknown) => out.destroy(err as Error));
  return out;
}

export function decryptObject(pc: PracticeCrypto, store: FileStore, objectName: string, fileId: string): Readable {
  const decryptor = new FileDecryptor((v) => pc.keyring.version(pc.trx, pc.practiceId, 'files', v), { practiceId: pc.practiceId, fileId });
  const out = new PassThrough();
  pipeline(store.get(objectName), decryptor, out).catch((err: unknown) => out.destroy(err as Error));
  return out;
}

/** Reads a whole stored file into memory (small files and tests only). */
export async function readFileFully(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
