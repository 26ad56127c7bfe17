import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat } from 'node:fs/promises';
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
  /** A stream of the object's bytes. */
  get(objectName: string): Readable;
  /** Removes the object; no error if it is already gone. */
  delete(objectName: string): Promise<void>;
  /** Removes temporary files a crashed write left behind (older than `before`); returns how many. */
  removeStaleTemp(before: Date): Promise<number>;
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
    const final = this.#path(objectName);
    const tmpDir = path.join(this.dir, 'tmp');
    await mkdir(tmpDir, { recursive: true, mode: 0o700 });
    await mkdir(path.dirname(final), { recursive: true, mode: 0o700 });
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
      await rename(temp, final);
      const dirHandle = await open(path.dirname(final), 'r');
      try {
        await dirHandle.sync();
      } finally {
        await dirHandle.close();
      }
      return { objectName, bytes: out.bytesWritten };
    } catch (err) {
      await rm(temp, { force: true });
      throw err;
    }
  }

  get(objectName: string): Readable {
    return createReadStream(this.#path(objectName));
  }

  async delete(objectName: string): Promise<void> {
    await rm(this.#path(objectName), { force: true });
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
