/** Typed failures of the crypto layer. Messages name ids and versions only, never key bytes or data. */

export class CryptoError extends Error {
  override name = 'CryptoError';
}

/** A ciphertext failed authentication: tampered, truncated, reordered, or moved to another place. */
export class DecryptionError extends CryptoError {
  override name = 'DecryptionError';
}

/** The data key needed was crypto-shredded: the data is gone for good, by design. */
export class KeyDestroyedError extends CryptoError {
  override name = 'KeyDestroyedError';
  /** Without purpose/version: the practice's key material as a whole was destroyed. */
  constructor(
    readonly practiceId: string,
    readonly purpose?: string,
    readonly version?: number,
  ) {
    super(
      purpose
        ? `The ${purpose} data key v${version} of practice ${practiceId} was destroyed (crypto-shredded); data encrypted under it can no longer be decrypted.`
        : `The keys of practice ${practiceId} were destroyed (crypto-shredded); its encrypted data can no longer be decrypted.`,
    );
  }
}

/** A key (data key version or KEK id) that should exist does not. */
export class KeyNotFoundError extends CryptoError {
  override name = 'KeyNotFoundError';
}

/** A re-encryption batch failed; the job is marked failed with `code` and `table` (never a value). */
export class RotationFailedError extends CryptoError {
  override name = 'RotationFailedError';
  constructor(
    readonly jobId: string,
    readonly code: string,
    readonly table: string | undefined,
  ) {
    super(`re-encryption job ${jobId} failed${table ? ` in ${table}` : ''} (${code}); fix the cause, then run \`enamel keys resume\``);
  }
}

/** A stored value no longer matches the content hash fixed when it was signed: the rotation stops rather than re-seal it. */
export class ContentHashMismatchError extends CryptoError {
  override name = 'ContentHashMismatchError';
}
