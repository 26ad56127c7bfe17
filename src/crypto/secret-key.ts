import { inspect } from 'node:util';

/**
 * A plaintext key held in memory. SECURITY: it cannot be logged, serialised or printed by
 * accident — toString, toJSON and util.inspect all give "[redacted key]". Only the crypto module
 * reads the bytes (via `bytes`).
 */
export class SecretKey {
  readonly #bytes: Buffer;

  constructor(bytes: Buffer) {
    if (bytes.length !== 32) throw new TypeError('SecretKey: expected 32 bytes');
    this.#bytes = Buffer.from(bytes);
  }

  /** The raw key bytes; crypto code only. */
  get bytes(): Buffer {
    return this.#bytes;
  }

  /** Overwrites the bytes in memory (best effort: V8 may hold copies). */
  wipe(): void {
    this.#bytes.fill(0);
  }

  toString(): string {
    return '[redacted key]';
  }

  toJSON(): string {
    return '[redacted key]';
  }

  [inspect.custom](): string {
    return '[redacted key]';
  }
}
