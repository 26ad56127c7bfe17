import { createHash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { open } from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import { PassThrough, Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { z } from 'zod';
import { FileDecryptor, FileEncryptor } from '../crypto/file-cipher.js';
import type { SecretKey } from '../crypto/secret-key.js';
import { INSTALLATION_ID } from '../db/tenant.js';

/**
 * The backup file (docs/BACKUP.md):
 *
 *   "ENBAK" ‖ format u8 (1) ‖ header length u32 ‖ header (JSON: id, time, the wrapped backup key)
 *   parts: name length u16 ‖ name ‖ length u64 ‖ bytes   (each part: the chunked AEAD of file-cipher.ts)
 *   the manifest part ("manifest", plain JSON) and its signature part ("manifest.sig", JSON)
 *   offset of the manifest part u64 (the last 8 bytes)
 *
 * Every part is encrypted under the backup's own key (random, wrapped by the key provider — never
 * a practice's data key), bound to the backup id and the part's name: a part moved to another
 * backup or renamed does not decrypt. The manifest lists each part's SHA-256 and length and is
 * signed with the installation's Ed25519 key.
 */
const MAGIC = Buffer.from('ENBAK');
const FORMAT = 1;
export const MANIFEST_PART = 'manifest';
export const SIGNATURE_PART = 'manifest.sig';

export const headerSchema = z.strictObject({
  id: z.uuid(),
  createdAt: z.iso.datetime(),
  kekId: z.string().regex(/^[A-Za-z0-9_.-]{1,40}$/),
  wrappedKey: z.base64(),
});
export type BackupHeader = z.infer<typeof headerSchema>;

const partName = z.string().regex(/^(db\/[a-z_][a-z0-9_]{0,62}|files\/[a-f0-9]{32}|pg_dump\/database)$/);

export const manifestSchema = z.strictObject({
  format: z.literal(FORMAT),
  /** How the database was captured: Enamel's COPY snapshot (one part per table) or pg_dump's custom format (one part). */
  method: z.enum(['snapshot', 'pg_dump']),
  id: z.uuid(),
  createdAt: z.iso.datetime(),
  /** The migrations applied when the snapshot was taken, in order. */
  schema: z.array(z.string().regex(/^\d{14}_[a-z0-9_]+$/)).min(1),
  tables: z.array(z.strictObject({ name: z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/), rows: z.number().int().min(0) })),
  chains: z.array(z.strictObject({ practiceId: z.uuid(), seq: z.string().regex(/^\d{1,19}$/), hash: z.string().regex(/^[a-f0-9]{64}$/) })),
  files: z.strictObject({ count: z.number().int().min(0), bytes: z.number().int().min(0), missing: z.array(z.string().regex(/^[a-f0-9]{32}$/)) }),
  parts: z.array(z.strictObject({ name: partName, bytes: z.number().int().min(0), sha256: z.string().regex(/^[a-f0-9]{64}$/) })),
});
export type Manifest = z.infer<typeof manifestSchema>;

export const signatureSchema = z.strictObject({ keyId: z.string().min(1).max(80), signature: z.base64() });

/** What the signature covers: the manifest's exact bytes, under a domain of their own (never mistaken for an audit checkpoint). */
export function signedMessage(manifestBytes: Buffer): Buffer {
  return Buffer.concat([Buffer.from('enamel-backup-manifest|v1|'), createHash('sha256').update(manifestBytes).digest()]);
}

const binding = (backupId: string, name: string) => ({ practiceId: INSTALLATION_ID, fileId: `backup:${backupId}:${name}` });

/** Appends parts to a new backup file; `finish` writes the manifest, signature and trailer. */
export class ArchiveWriter {
  #position = 0;
  private constructor(
    readonly handle: FileHandle,
    readonly header: BackupHeader,
    readonly key: SecretKey,
  ) {}

  static async create(file: string, header: BackupHeader, key: SecretKey): Promise<ArchiveWriter> {
    const handle = await open(file, 'wx', 0o600);
    const w = new ArchiveWriter(handle, header, key);
    const json = Buffer.from(JSON.stringify(header));
    const head = Buffer.alloc(MAGIC.length + 5);
    MAGIC.copy(head, 0);
    head.writeUInt8(FORMAT, MAGIC.length);
    head.writeUInt32BE(json.length, MAGIC.length + 1);
    await w.#write(Buffer.concat([head, json]));
    return w;
  }

  async #write(data: Buffer): Promise<void> {
    let done = 0;
    while (done < data.length) {
      const { bytesWritten } = await this.handle.write(data, done, data.length - done, this.#position + done);
      done += bytesWritten;
    }
    this.#position += data.length;
  }

  /** Streams `source` into an encrypted part. Returns its length and SHA-256 (of the stored bytes). */
  async part(name: string, source: Readable): Promise<{ name: string; bytes: number; sha256: string }> {
    partName.parse(name);
    return this.#raw(name, source, true);
  }

  async #raw(name: string, source: Readable, encrypt: boolean): Promise<{ name: string; bytes: number; sha256: string }> {
    const nameBytes = Buffer.from(name);
    const recordHead = Buffer.alloc(2 + nameBytes.length + 8);
    recordHead.writeUInt16BE(nameBytes.length, 0);
    nameBytes.copy(recordHead, 2);
    const lengthAt = this.#position + 2 + nameBytes.length;
    await this.#write(recordHead);
    const hash = createHash('sha256');
    let bytes = 0;
    const sink = new Writable({
      write: (chunk: Buffer, _enc, done) => {
        hash.update(chunk);
        bytes += chunk.length;
        this.#write(chunk).then(() => done(), done);
      },
    });
    const stages = encrypt ? [source, new FileEncryptor(this.key, 1, binding(this.header.id, name)), sink] : [source, sink];
    await pipeline(stages);
    const len = Buffer.alloc(8);
    len.writeBigUInt64BE(BigInt(bytes));
    await this.handle.write(len, 0, 8, lengthAt);
    return { name, bytes, sha256: hash.digest('hex') };
  }

  async finish(manifest: Manifest, signature: { keyId: string; signature: Buffer }): Promise<number> {
    const manifestAt = this.#position;
    const once = (b: Buffer) => {
      const s = new PassThrough();
      s.end(b);
      return s;
    };
    await this.#raw(MANIFEST_PART, once(Buffer.from(JSON.stringify(manifest))), false);
    await this.#raw(SIGNATURE_PART, once(Buffer.from(JSON.stringify({ keyId: signature.keyId, signature: signature.signature.toString('base64') }))), false);
    const trailer = Buffer.alloc(8);
    trailer.writeBigUInt64BE(BigInt(manifestAt));
    await this.#write(trailer);
    await this.handle.sync();
    await this.handle.close();
    return this.#position;
  }

  async abandon(): Promise<void> {
    await this.handle.close().catch(() => undefined);
  }
}

/** A part as found in the file: where its bytes are. */
export interface PartLocation {
  name: string;
  offset: number;
  bytes: number;
}

export class ArchiveFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ArchiveFormatError';
  }
}

/** Reads a backup file: header, the list of parts, the manifest and signature; streams parts. */
export class ArchiveReader {
  private constructor(
    readonly file: string,
    readonly handle: FileHandle,
    readonly size: number,
    readonly header: BackupHeader,
    readonly parts: PartLocation[],
    readonly manifestBytes: Buffer,
    readonly signatureBytes: Buffer,
  ) {}

  static async open(file: string): Promise<ArchiveReader> {
    const handle = await open(file, 'r');
    try {
      const size = (await handle.stat()).size;
      const read = async (offset: number, length: number): Promise<Buffer> => {
        if (offset < 0 || length < 0 || offset + length > size) throw new ArchiveFormatError('the backup file is truncated');
        const b = Buffer.alloc(length);
        await handle.read(b, 0, length, offset);
        return b;
      };
      const head = await read(0, MAGIC.length + 5);
      if (!head.subarray(0, MAGIC.length).equals(MAGIC)) throw new ArchiveFormatError('not an Enamel backup file');
      if (head.readUInt8(MAGIC.length) !== FORMAT) throw new ArchiveFormatError(`backup format ${head.readUInt8(MAGIC.length)} is not one this version reads`);
      const headerLength = head.readUInt32BE(MAGIC.length + 1);
      if (headerLength > 64 * 1024) throw new ArchiveFormatError('the backup header is malformed');
      const parsedHeader = headerSchema.safeParse(JSON.parse((await read(head.length, headerLength)).toString('utf8')));
      if (!parsedHeader.success) throw new ArchiveFormatError('the backup header is malformed');
      const manifestAt = Number((await read(size - 8, 8)).readBigUInt64BE(0));
      const parts: PartLocation[] = [];
      let at = head.length + headerLength;
      while (at < size - 8) {
        const nameLength = (await read(at, 2)).readUInt16BE(0);
        if (nameLength === 0 || nameLength > 200) throw new ArchiveFormatError(`a part at byte ${at} has a malformed name`);
        const name = (await read(at + 2, nameLength)).toString('utf8');
        const bytes = Number((await read(at + 2 + nameLength, 8)).readBigUInt64BE(0));
        const offset = at + 2 + nameLength + 8;
        if (offset + bytes > size - 8) throw new ArchiveFormatError(`part ${name} runs past the end of the file (truncated?)`);
        parts.push({ name, offset, bytes });
        at = offset + bytes;
      }
      const manifestPart = parts.find((p) => p.name === MANIFEST_PART);
      const signaturePart = parts.find((p) => p.name === SIGNATURE_PART);
      if (!manifestPart || !signaturePart || manifestPart.offset - 2 - MANIFEST_PART.length - 8 !== manifestAt) throw new ArchiveFormatError('the backup has no manifest where its trailer says (truncated or altered)');
      const data = parts.filter((p) => p !== manifestPart && p !== signaturePart);
      return new ArchiveReader(file, handle, size, parsedHeader.data, data, await read(manifestPart.offset, manifestPart.bytes), await read(signaturePart.offset, signaturePart.bytes));
    } catch (err) {
      await handle.close();
      if (err instanceof SyntaxError) throw new ArchiveFormatError('the backup header is malformed');
      throw err;
    }
  }

  /** The stored (encrypted) bytes of a part. */
  raw(part: PartLocation): Readable {
    if (part.bytes === 0) return emptyStream();
    return createReadStream(this.file, { start: part.offset, end: part.offset + part.bytes - 1 });
  }

  /** The decrypted bytes of a part; the stream errors if any chunk's tag fails or the part is cut short. */
  decrypted(part: PartLocation, key: SecretKey): Readable {
    const decryptor = new FileDecryptor(async () => key, binding(this.header.id, part.name));
    const source = this.raw(part);
    source.on('error', (e) => decryptor.destroy(e));
    return source.pipe(decryptor);
  }

  async close(): Promise<void> {
    await this.handle.close();
  }
}

function emptyStream(): Readable {
  const s = new PassThrough();
  s.end();
  return s;
}
