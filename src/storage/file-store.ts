import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { link, mkdir, open, readdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';

/**
 * Blob storage for already-encrypted bytes. Local disk today; an S3-compatible store implements
 * the same three calls. Object names are random (128 bits, hex) and say nothing about the content.
 */
export interface FileStore {
  /** Streams `source` through `transforms` into a new object; atomic (temp name, fsync, rename). */
  put(source: Readable, ...transforms: Transform[]): Promise<{ objectName: string; bytes: number }>;
  /**
   * Writes `source` as the object `objectName` (a restore puts blobs back under the names their
   * rows name); atomic like put. Refuses a name that already exists.
   */
  putNamed(objectName: string, source: Readable): Promise<{ bytes: number }>;
  /** A stream of the object's bytes. */
  get(objectName: string): Readable;
  /** Removes the object; no error if it is already gone. */
  delete(objectName: string): Promise<void>;
  /** Removes temporary files a crashed write left behind (older than `before`); returns how many. */
  removeStaleTemp(before: Date): Promise<number>;
  /** Every object name last written before `before` (the cleanup job's orphan sweep). */
  listObjects(before: Date): AsyncIterable<string>;
}

/**
 * The store itself failed (full, read-only, no permission, I/O error) — not the upload. Callers
 * tell the user nothing was saved and raise an installation alert; `code` is the system error code.
 */
export class StorageError extends Error {
  override name = 'StorageError';
  constructor(readonly code: string) {
    super(`the file store could not write (${code})`);
  }
}

const STORAGE_CODES = new Set(['ENOSPC', 'EROFS', 'EACCES', 'EPERM', 'EDQUOT', 'EIO', 'EMFILE', 'ENFILE']);

/** A file-system failure of the store itself becomes a StorageError; anything else (a stream error of the source) passes through. */
function storageFailure(err: unknown): unknown {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && STORAGE_CODES.has(code) ? new StorageError(code) : err;
}

const OBJECT_NAME = /^[a-f0-9]{32}$/;

export class LocalFileStore implements FileStore {
  constructor(readonly dir: string) {}

  #path(objectName: string): string {
    if (!OBJECT_NAME.test(objectName)) throw new TypeError('invalid object name');
    return path.join(this.dir, objectName.slice(0, 2), objectName);
  }

  async put(source: Readable, ...transforms: Transform[]): Promise<{ objectName: string; bytes: number }> {
    const objectName = randomBytes(16).toString('hex');
    return { objectName, bytes: await this.#write(objectName, source, transforms, false) };
  }

  async putNamed(objectName: string, source: Readable): Promise<{ bytes: number }> {
    return { bytes: await this.#write(objectName, source, [], true) };
  }

  async #write(objectName: string, source: Readable, transforms: Transform[], mustBeNew: boolean): Promise<number> {
    const final = this.#path(objectName);
    const tmpDir = path.join(this.dir, 'tmp');
    try {
      await mkdir(tmpDir, { recursive: true, mode: 0o700 });
      await mkdir(path.dirname(final), { recursive: true, mode: 0o700 });
    } catch (err) {
      throw storageFailure(err);
    }
    const temp = path.join(tmpDir, `${objectName}.${randomBytes(4).toString('hex')}.part`);
    const out = createWriteStream(temp, { mode: 0o600, flags: 'wx' });
    try {
      await pipeline([source, ...transforms, out]);
      const handle = await open(temp, 'r');
      try {
        await handle.sync();
      } finally {
        await handle.close();
      }
      if (mustBeNew) {
        // link fails if the name exists (rename would replace it silently).
        await link(temp, final);
        await rm(temp, { force: true });
      } else {
        await rename(temp, final);
      }
      const dirHandle = await open(path.dirname(final), 'r');
      try {
        await dirHandle.sync();
      } finally {
        await dirHandle.close();
      }
      return out.bytesWritten;
    } catch (err) {
      await rm(temp, { force: true }).catch(() => undefined);
      throw storageFailure(err);
    }
  }

  get(objectName: string): Readable {
    return createReadStream(this.#path(objectName));
  }

  async delete(objectName: string): Promise<void> {
    await rm(this.#path(objectName), { force: true });
  }

  async *listObjects(before: Date): AsyncIterable<string> {
    const shards = await readdir(this.dir).catch(() => [] as string[]);
    for (const shard of shards) {
      if (!/^[a-f0-9]{2}$/.test(shard)) continue;
      for (const name of await readdir(path.join(this.dir, shard)).catch(() => [] as string[])) {
        if (!OBJECT_NAME.test(name) || !name.startsWith(shard)) continue;
        const info = await stat(path.join(this.dir, shard, name)).catch(() => undefined);
        if (info && info.mtime < before) yield name;
      }
    }
  }

  async removeStaleTemp(before: Date): Promise<number> {
    const tmpDir = path.join(this.dir, 'tmp');
    const names = await readdir(tmpDir).catch(() => [] as string[]);
    let removed = 0;
    for (const name of names) {
      if (!/^[a-f0-9]{32}\.[a-f0-9]{8}\.part$/.test(name)) continue;
      const file = path.join(tmpDir, name);
      const info = await stat(file).catch(() => undefined);
      if (info && info.mtime < before) {
        await rm(file, { force: true });
        removed++;
      }
    }
    return removed;
  }
}
