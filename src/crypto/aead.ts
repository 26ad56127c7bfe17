import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { DecryptionError } from './errors.js';

/** The one AES-256-GCM primitive every cipher in Enamel goes through. 96-bit IVs, 128-bit tags. */
export const IV_BYTES = 12;
export const TAG_BYTES = 16;

export function randomIv(): Buffer {
  return randomBytes(IV_BYTES);
}

export function gcmEncrypt(key: Buffer, iv: Buffer, plaintext: Buffer, aad: Buffer): { ciphertext: Buffer; tag: Buffer } {
  const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(aad);
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return { ciphertext, tag: cipher.getAuthTag() };
}

/** Decrypts and authenticates; any mismatch (key, IV, AAD, ciphertext, tag) is a DecryptionError. */
export function gcmDecrypt(key: Buffer, iv: Buffer, ciphertext: Buffer, tag: Buffer, aad: Buffer, what = 'value'): Buffer {
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
    decipher.setAAD(aad);
    decipher.setAuthTag(tag);
    return Buffer.concat([decipher.update(ciphertext), decipher.final()]);
  } catch {
    throw new DecryptionError(`${what} failed authentication (tampered, truncated, or not encrypted for this place)`);
  }
}
