import { createPrivateKey, createPublicKey, hkdfSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { IV_BYTES, TAG_BYTES, gcmDecrypt, gcmEncrypt, randomIv } from './aead.js';
import { CryptoError, KeyDestroyedError, KeyNotFoundError } from './errors.js';

/**
 * Wraps and unwraps data keys with a key-encryption key (KEK). Callers never see a KEK: a KMS or
 * Vault-transit provider implements the same two calls remotely.
 */
/** What a wrapped data key belongs to; bound into the wrap. */
export interface WrapContext {
  practiceId: string;
  purpose: string;
  version: number;
}

export interface KeyProvider {
  /** "local", "kms", … (for status output). */
  readonly kind: string;
  /** True for the generated evaluation KEK; production refuses to start with it. */
  readonly isEvaluation: boolean;
  /** The KEK new wraps use. */
  activeKekId(): string;
  /** Every KEK id this provider can unwrap with. */
  kekIds(): string[];
  /** Wraps a data key under the active KEK and the practice's key material, bound to `context`. */
  wrap(dataKey: Buffer, context: WrapContext): Promise<{ kekId: string; wrapped: Buffer }>;
  /**
   * Unwraps with the named KEK; KeyNotFoundError if this provider lacks it, KeyDestroyedError if
   * the practice's key material was destroyed.
   */
  unwrap(kekId: string, wrapped: Buffer, context: WrapContext): Promise<Buffer>;
  /**
   * SECURITY: crypto-shredding outside the database. Destroys the practice's key material held by
   * the provider, so wrapped data keys of that practice — including copies in database backups —
   * can never be unwrapped again.
   */
  destroyPractice(practiceId: string): Promise<void>;
  /** Signs an audit checkpoint with the provider's Ed25519 signing key (never in the database). */
  signCheckpoint(message: Buffer): Promise<{ keyId: string; signature: Buffer }>;
  /** The public key (SPKI DER) for a signing key id, to verify checkpoints; undefined if unknown. */
  checkpointPublicKey(keyId: string): Promise<Buffer | undefined>;
}

/** DER prefix of a PKCS#8 Ed25519 private key; the 32-byte seed follows. */
const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

const KEK_ID = /^[A-Za-z0-9_.-]{1,40}$/;
const keyFileSchema = z.object({
  active: z.string().regex(KEK_ID),
  evaluation: z.boolean().optional(),
  keys: z.record(z.string().regex(KEK_ID), z.string()),
});
export type KeyFile = z.infer<typeof keyFileSchema>;

function decodeKek(id: string, b64: string): Buffer {
  const key = Buffer.from(b64, 'base64');
  if (key.length !== 32) throw new CryptoError(`KEK "${id}" must be 32 bytes, base64-encoded (openssl rand -base64 32)`);
  return key;
}

/**
 * Local provider: KEKs held in this process (key file or ENAMEL_KEKS), plus a 32-byte random secret
 * per practice in `practiceKeysDir` (KEYS_DIR). The key that wraps a practice's data keys is
 * HKDF-SHA-256(KEK, salt = practice secret, info = practice id): destroying the practice secret
 * makes every wrapped key of that practice — in the database and in its backups — useless.
 * NOTE: KEYS_DIR must be backed up apart from the database, and shared by all replicas.
 */
export class LocalKeyProvider implements KeyProvider {
  readonly kind = 'local';
  readonly #keks: Map<string, Buffer>;
  readonly #active: string;
  readonly #practiceKeysDir: string;
  readonly isEvaluation: boolean;

  constructor(keks: Record<string, string>, active: string, options: { practiceKeysDir: string; isEvaluation?: boolean }) {
    this.isEvaluation = options.isEvaluation ?? false;
    this.#practiceKeysDir = options.practiceKeysDir;
    this.#keks = new Map(Object.entries(keks).map(([id, b64]) => [id, decodeKek(id, b64)]));
    if (!this.#keks.has(active)) throw new CryptoError(`the active KEK "${active}" is not among the configured KEKs`);
    this.#active = active;
  }

  activeKekId(): string {
    return this.#active;
  }

  kekIds(): string[] {
    return [...this.#keks.keys()];
  }

  async wrap(dataKey: Buffer, context: WrapContext): Promise<{ kekId: string; wrapped: Buffer }> {
    const wrappingKey = await this.#wrappingKey(this.#active, context.practiceId, true);
    const iv = randomIv();
    const { ciphertext, tag } = gcmEncrypt(wrappingKey, iv, dataKey, aadFor(this.#active, context));
    wrappingKey.fill(0);
    return { kekId: this.#active, wrapped: Buffer.concat([iv, ciphertext, tag]) };
  }

  async unwrap(kekId: string, wrapped: Buffer, context: WrapContext): Promise<Buffer> {
    const wrappingKey = await this.#wrappingKey(kekId, context.practiceId, false);
    const iv = wrapped.subarray(0, IV_BYTES);
    const tag = wrapped.subarray(wrapped.length - TAG_BYTES);
    const ciphertext = wrapped.subarray(IV_BYTES, wrapped.length - TAG_BYTES);
    try {
      return gcmDecrypt(wrappingKey, iv, ciphertext, tag, aadFor(kekId, context), 'wrapped data key');
    } finally {
      wrappingKey.fill(0);
    }
  }

  async destroyPractice(practiceId: string): Promise<void> {
    const file = this.#secretFile(practiceId);
    await mkdir(this.#practiceKeysDir, { recursive: true, mode: 0o700 });
    // The tombstone first: a missing secret is then known to be shredded, not lost.
    await writeFile(`${file}.destroyed`, new Date().toISOString(), { mode: 0o600 });
    if (existsSync(file)) {
      await writeFile(file, randomBytes(32).toString('hex'));
      await rm(file, { force: true });
    }
  }

  async signCheckpoint(message: Buffer): Promise<{ keyId: string; signature: Buffer }> {
    return { keyId: `${this.#active}:ed25519`, signature: sign(null, message, this.#signingKey(this.#active)) };
  }

  async checkpointPublicKey(keyId: string): Promise<Buffer | undefined> {
    const kekId = keyId.endsWith(':ed25519') ? keyId.slice(0, -':ed25519'.length) : undefined;
    if (!kekId || !this.#keks.has(kekId)) return undefined;
    return createPublicKey(this.#signingKey(kekId)).export({ type: 'spki', format: 'der' });
  }

  /** Ed25519 key derived from a KEK (HKDF, its own info string): rotates with the KEK. */
  #signingKey(kekId: string): KeyObject {
    const seed = Buffer.from(hkdfSync('sha256', this.#keks.get(kekId)!, Buffer.alloc(0), 'enamel-audit-checkpoint-signing', 32));
    return createPrivateKey({ key: Buffer.concat([ED25519_PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' });
  }

  #secretFile(practiceId: string): string {
    if (!/^[0-9a-f-]{36}$/i.test(practiceId)) throw new CryptoError('practice id must be a UUID');
    return path.join(this.#practiceKeysDir, `${practiceId}.key`);
  }

  async #practiceSecret(practiceId: string, create: boolean): Promise<Buffer> {
    const file = this.#secretFile(practiceId);
    if (existsSync(`${file}.destroyed`)) throw new KeyDestroyedError(practiceId);
    if (!existsSync(file)) {
      if (!create) {
        throw new KeyNotFoundError(`the key material of practice ${practiceId} is missing from KEYS_DIR (${this.#practiceKeysDir}); restore it from the key backup`);
      }
      await mkdir(this.#practiceKeysDir, { recursive: true, mode: 0o700 });
      // CASE: two processes create it at once: 'wx' lets one win; the other reads the winner's.
      await writeFile(file, randomBytes(32).toString('hex'), { mode: 0o600, flag: 'wx' }).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'EEXIST') throw err;
      });
    }
    const secret = Buffer.from((await readFile(file, 'utf8')).trim(), 'hex');
    if (secret.length !== 32) throw new CryptoError(`the key material of practice ${practiceId} in KEYS_DIR is corrupt`);
    return secret;
  }

  async #wrappingKey(kekId: string, practiceId: string, create: boolean): Promise<Buffer> {
    const kek = this.#keks.get(kekId);
    if (!kek) throw new KeyNotFoundError(`KEK "${kekId}" is not configured; add it to the key file or ENAMEL_KEKS`);
    const secret = await this.#practiceSecret(practiceId, create);
    const derived = Buffer.from(hkdfSync('sha256', kek, secret, `enamel-practice-wrap|${practiceId}`, 32));
    secret.fill(0);
    return derived;
  }
}

function aadFor(kekId: string, c: WrapContext): Buffer {
  return Buffer.from(`enamel-dek-wrap|${kekId}|${c.practiceId}|${c.purpose}|${c.version}`);
}

/** Parses ENAMEL_KEKS ("id:base64,id2:base64"); the first is active unless ENAMEL_KEK_ACTIVE says otherwise. */
export function parseKekList(list: string, active?: string): KeyFile {
  const keys: Record<string, string> = {};
  for (const part of list.split(',').map((p) => p.trim()).filter(Boolean)) {
    const i = part.indexOf(':');
    const id = part.slice(0, i);
    if (i <= 0 || !KEK_ID.test(id)) throw new CryptoError('ENAMEL_KEKS must look like "id:base64key,id2:base64key"');
    keys[id] = part.slice(i + 1);
  }
  const first = Object.keys(keys)[0];
  if (!first) throw new CryptoError('ENAMEL_KEKS is empty');
  return { active: active ?? first, keys };
}

export async function readKeyFile(file: string): Promise<KeyFile> {
  const parsed = keyFileSchema.safeParse(JSON.parse(await readFile(file, 'utf8')));
  if (!parsed.success) throw new CryptoError(`key file ${file} is malformed: expected {"active": id, "keys": {id: base64}}`);
  return parsed.data;
}

export const EVALUATION_KEK_FILE = 'keys/evaluation-kek.json';

/** Creates (first time) or reads the evaluation KEK under DATA_DIR. Evaluation only. */
export async function loadOrCreateEvaluationKeyFile(dataDir: string): Promise<{ file: string; created: boolean; keyFile: KeyFile }> {
  const file = path.join(dataDir, EVALUATION_KEK_FILE);
  if (existsSync(file)) return { file, created: false, keyFile: await readKeyFile(file) };
  await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  const keyFile: KeyFile = { active: 'eval-1', evaluation: true, keys: { 'eval-1': randomBytes(32).toString('base64') } };
  await writeFile(file, JSON.stringify(keyFile, null, 2), { mode: 0o600, flag: 'wx' });
  return { file, created: true, keyFile };
}
