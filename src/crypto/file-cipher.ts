import { randomBytes } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { TAG_BYTES, gcmDecrypt, gcmEncrypt } from './aead.js';
import { DecryptionError } from './errors.js';
import type { SecretKey } from './secret-key.js';

/**
 * Streaming chunked AEAD for files (in the spirit of STREAM / age):
 *
 *   header (17 bytes): "ENF" ‖ format 1 ‖ key version u16 ‖ segment size u32 ‖ nonce prefix (7 random bytes)
 *   segments: AES-256-GCM(segment plaintext) ‖ tag, every segment `segmentSize` bytes of plaintext
 *             except the last (0..segmentSize bytes; an empty file is one empty last segment)
 *   nonce of segment i = prefix ‖ i (u32 BE) ‖ last-flag (1 byte: 1 on the last segment, else 0)
 *   AAD of every segment = header ‖ practice id ‖ file id
 *
 * Reordered or swapped segments fail (counter in the nonce), a truncated file fails (no segment
 * carried the last flag), a segment from another file fails (prefix, key and AAD differ), a
 * changed header fails (it is in every AAD). Memory use is one segment, whatever the file size.
 */
export const FILE_MAGIC = Buffer.from('ENF');
export const FILE_FORMAT = 1;
export const FILE_HEADER_BYTES = 17;
export const DEFAULT_SEGMENT = 64 * 1024;

export interface FileBinding {
  practiceId: string;
  fileId: string;
}

function nonce(prefix: Buffer, counter: number, last: boolean): Buffer {
  const n = Buffer.alloc(12);
  prefix.copy(n, 0);
  n.writeUInt32BE(counter, 7);
  n.writeUInt8(last ? 1 : 0, 11);
  return n;
}

function aadFor(header: Buffer, b: FileBinding): Buffer {
  return Buffer.concat([header, Buffer.from(`|${b.practiceId}|${b.fileId}`)]);
}

/** The data-key version a stored file was encrypted under (reads the header only). */
export function parseFileHeader(header: Buffer): { version: number; segmentSize: number; prefix: Buffer } {
  if (header.length < FILE_HEADER_BYTES || !header.subarray(0, 3).equals(FILE_MAGIC) || header.readUInt8(3) !== FILE_FORMAT) {
    throw new DecryptionError('not an Enamel encrypted file (bad header)');
  }
  const segmentSize = header.readUInt32BE(6);
  if (segmentSize < 16 || segmentSize > 16 * 1024 * 1024) throw new DecryptionError('encrypted file header has an invalid segment size');
  return { version: header.readUInt16BE(4), segmentSize, prefix: header.subarray(10, 17) };
}

/** Encrypting transform: plaintext in, header + segments out. `plaintextBytes` is known after 'end'. */
export class FileEncryptor extends Transform {
  plaintextBytes = 0;
  readonly #key: SecretKey;
  readonly #header: Buffer;
  readonly #prefix = randomBytes(7);
  readonly #aad: Buffer;
  readonly #segmentSize: number;
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  #counter = 0;

  constructor(key: SecretKey, version: number, binding: FileBinding, segmentSize = DEFAULT_SEGMENT) {
    super();
    this.#key = key;
    this.#segmentSize = segmentSize;
    this.#header = Buffer.alloc(FILE_HEADER_BYTES);
    FILE_MAGIC.copy(this.#header, 0);
    this.#header.writeUInt8(FILE_FORMAT, 3);
    this.#header.writeUInt16BE(version, 4);
    this.#header.writeUInt32BE(segmentSize, 6);
    this.#prefix.copy(this.#header, 10);
    this.#aad = aadFor(this.#header, binding);
    this.push(this.#header);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.plaintextBytes += chunk.length;
    const buf = this.#pendingBytes > 0 ? Buffer.concat([...this.#pending, chunk]) : chunk;
    let offset = 0;
    // NOTE: keep at least one byte back: only at the end do we know which segment is the last.
    while (buf.length - offset > this.#segmentSize) {
      this.#emit(buf.subarray(offset, offset + this.#segmentSize), false);
      offset += this.#segmentSize;
    }
    const rest = buf.subarray(offset);
    this.#pending = [rest];
    this.#pendingBytes = rest.length;
    done();
  }

  override _flush(done: TransformCallback): void {
    this.#emit(Buffer.concat(this.#pending), true);
    this.#pending = [];
    done();
  }

  #emit(plaintext: Buffer, last: boolean): void {
    const { ciphertext, tag } = gcmEncrypt(this.#key.bytes, nonce(this.#prefix, this.#counter++, last), plaintext, this.#aad);
    this.push(ciphertext);
    this.push(tag);
  }
}

/** Decrypting transform: header + segments in, plaintext out; errors on any tampering or truncation. */
export class FileDecryptor extends Transform {
  readonly #keyFor: (version: number) => Promise<SecretKey>;
  readonly #binding: FileBinding;
  #key: SecretKey | undefined;
  #header: Buffer | undefined;
  #prefix: Buffer = Buffer.alloc(0);
  #aad: Buffer = Buffer.alloc(0);
  #segmentBytes = 0;
  #buffer: Buffer = Buffer.alloc(0);
  #counter = 0;
  #sawLast = false;

  /** `keyFor` resolves the data key of the version named in the header. */
  constructor(keyFor: (version: number) => Promise<SecretKey>, binding: FileBinding) {
    super();
    this.#keyFor = keyFor;
    this.#binding = binding;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.#buffer = this.#buffer.length ? Buffer.concat([this.#buffer, chunk]) : chunk;
    this.#drain(false).then(() => done(), (err: unknown) => done(err as Error));
  }

  override _flush(done: TransformCallback): void {
    this.#drain(true).then(
      () => done(this.#sawLast ? undefined : new DecryptionError('encrypted file is truncated (no final segment)')),
      (err: unknown) => done(err as Error),
    );
  }

  async #drain(ending: boolean): Promise<void> {
    if (!this.#header) {
      if (this.#buffer.length < FILE_HEADER_BYTES) {
        if (ending) throw new DecryptionError('encrypted file is truncated (incomplete header)');
        return;
      }
      this.#header = this.#buffer.subarray(0, FILE_HEADER_BYTES);
      const { version, segmentSize, prefix } = parseFileHeader(this.#header);
      this.#prefix = prefix;
      this.#segmentBytes = segmentSize + TAG_BYTES;
      this.#aad = aadFor(this.#header, this.#binding);
      this.#buffer = this.#buffer.subarray(FILE_HEADER_BYTES);
      this.#key = await this.#keyFor(version);
    }
    // Only a segment followed by more data is certainly not the last one.
    while (this.#buffer.length > this.#segmentBytes) {
      this.#open(this.#buffer.subarray(0, this.#segmentBytes), false);
      this.#buffer = this.#buffer.subarray(this.#segmentBytes);
    }
    if (ending) {
      if (this.#buffer.length < TAG_BYTES) throw new DecryptionError('encrypted file is truncated (partial segment)');
      this.#open(this.#buffer, true);
      this.#buffer = Buffer.alloc(0);
    }
  }

  #open(segment: Buffer, last: boolean): void {
    if (this.#sawLast) throw new DecryptionError('encrypted file has data after its final segment');
    const ciphertext = segment.subarray(0, segment.length - TAG_BYTES);
    const tag = segment.subarray(segment.length - TAG_BYTES);
    const plaintext = gcmDecrypt(this.#key!.bytes, nonce(this.#prefix, this.#counter++, last), ciphertext, tag, this.#aad, 'file segment');
    if (last) this.#sawLast = true;
    this.push(plaintext);
  }
}
