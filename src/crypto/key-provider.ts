import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { IV_BYTES, TAG_BYTES, gcmDecrypt, gcmEncrypt, randomIv } from './aead.js';
import { CryptoError, KeyNotFoundError } from './errors.js';

/**
 * Wraps and unwraps data keys with a key-encryption key (KEK). Callers never see a KEK: a KMS or
 * Vault-transit provider implements the same two calls remotely.
 */
export interface KeyProvider {
  /** "local", "kms", … (for status output). */
  readonly kind: string;
  /** True for the generated evaluation KEK; production refuses to start with it. */
  readonly isEvaluation: boolean;
  /** The KEK new wraps use. */
  activeKekId(): string;
  /** Every KEK id this provider can unwrap with. */
  kekIds(): string[];
  /** Wraps a data key under the active KEK, bound to `context` (practice, purpose, version). */
  wrap(dataKey: Buffer, context: string): Promise<{ kekId: string; wrapped: Buffer }>;
  /** Unwraps with the named KEK; throws KeyNotFoundError if this provider lacks it. */
  unwrap(kekId: string, wrapped: Buffer, context: string): Promise<Buffer>;
}

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

/** Local provider: KEKs held in this process, from a key file or the ENAMEL_KEKS variable. */
export class LocalKeyProvider implements KeyProvider {
  readonly kind = 'local';
  readonly #keks: Map<string, Buffer>;
  readonly #active: string;

  constructor(
    keks: Record<string, string>,
    active: string,
    readonly isEvaluation = false,
  ) {
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

  async wrap(dataKey: Buffer, context: string): Promise<{ kekId: string; wrapped: Buffer }> {
    const iv = randomIv();
    const { ciphertext, tag } = gcmEncrypt(this.#keks.get(this.#active)!, iv, dataKey, aadFor(this.#active, context));
    return { kekId: this.#active, wrapped: Buffer.concat([iv, ciphertext, tag]) };
  }

  async unwrap(kekId: string, wrapped: Buffer, context: string): Promise<Buffer> {
    const kek = this.#keks.get(kekId);
    if (!kek) throw new KeyNotFoundError(`KEK "${kekId}" is not configured; add it to the key file or ENAMEL_KEKS`);
    const iv = wrapped.subarray(0, IV_BYTES);
    const tag = wrapped.subarray(wrapped.length - TAG_BYTES);
    const ciphertext = wrapped.subarray(IV_BYTES, wrapped.length - TAG_BYTES);
    return gcmDecrypt(kek, iv, ciphertext, tag, aadFor(kekId, context), 'wrapped data key');
  }
}

function aadFor(kekId: string, context: string): Buffer {
  return Buffer.from(`enamel-dek-wrap|${kekId}|${context}`);
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
