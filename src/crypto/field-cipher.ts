import { IV_BYTES, TAG_BYTES, gcmDecrypt, gcmEncrypt, randomIv } from './aead.js';
import { DecryptionError } from './errors.js';
import type { SecretKey } from './secret-key.js';

/**
 * Field envelope, stored in a bytea column:
 *
 *   [0]      format version (1)
 *   [1..2]   data-key version (uint16, big-endian) — the key id is (practice, "fields", version)
 *   [3..14]  IV, 96 bits, random per value
 *   [15..]   ciphertext
 *   [-16..]  GCM tag
 *
 * AAD = the 3 header bytes ‖ "enamel-field" ‖ practice ‖ table ‖ column ‖ row id, so a value copied
 * into another row, column, table or practice fails to decrypt.
 */
export const FIELD_FORMAT = 1;
const HEADER_BYTES = 3;
export const FIELD_OVERHEAD = HEADER_BYTES + IV_BYTES + TAG_BYTES;

/** Where a value lives; bound into its AAD. */
export interface FieldPlace {
  practiceId: string;
  table: string;
  column: string;
  rowId: string;
}

function aad(header: Buffer, place: FieldPlace): Buffer {
  return Buffer.concat([header, Buffer.from(`|enamel-field|${place.practiceId}|${place.table}|${place.column}|${place.rowId}`)]);
}

export function encryptField(key: SecretKey, version: number, plaintext: Buffer, place: FieldPlace): Buffer {
  const header = Buffer.alloc(HEADER_BYTES);
  header.writeUInt8(FIELD_FORMAT, 0);
  header.writeUInt16BE(version, 1);
  const iv = randomIv();
  const { ciphertext, tag } = gcmEncrypt(key.bytes, iv, plaintext, aad(header, place));
  return Buffer.concat([header, iv, ciphertext, tag]);
}

/** The data-key version an envelope was written under (validates the format byte). */
export function fieldKeyVersion(envelope: Buffer): number {
  if (envelope.length < FIELD_OVERHEAD || envelope.readUInt8(0) !== FIELD_FORMAT) {
    throw new DecryptionError('not an Enamel field envelope (unknown format or too short)');
  }
  return envelope.readUInt16BE(1);
}

export function decryptField(key: SecretKey, envelope: Buffer, place: FieldPlace): Buffer {
  fieldKeyVersion(envelope);
  const header = envelope.subarray(0, HEADER_BYTES);
  const iv = envelope.subarray(HEADER_BYTES, HEADER_BYTES + IV_BYTES);
  const ciphertext = envelope.subarray(HEADER_BYTES + IV_BYTES, envelope.length - TAG_BYTES);
  const tag = envelope.subarray(envelope.length - TAG_BYTES);
  return gcmDecrypt(key.bytes, iv, ciphertext, tag, aad(header, place), `${place.table}.${place.column}`);
}
