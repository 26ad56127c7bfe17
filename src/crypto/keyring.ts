import { activeKeyForShare, currentActor, insertDataKey, insertKeyEvent, keyVersion, retiredKeys, type DataKeyRow } from '../queries/keys.queries.js';
import { randomBytes } from 'node:crypto';
import type { Knex } from 'knex';
import { KeyDestroyedError, KeyNotFoundError } from './errors.js';
import type { KeyProvider, WrapContext } from './key-provider.js';
import { SecretKey } from './secret-key.js';

export const PURPOSES = ['fields', 'blind-index', 'files'] as const;
export type Purpose = (typeof PURPOSES)[number];

export interface VersionedKey {
  version: number;
  key: SecretKey;
}


/** What a wrapped data key is bound to: a DEK unwrapped for another practice/purpose/version fails. */
export function wrapContext(practiceId: string, purpose: Purpose, version: number): WrapContext {
  return { practiceId, purpose, version };
}

function cacheId(practiceId: string, purpose: Purpose, version: number): string {
  return `${practiceId}|${purpose}|${version}`;
}

/**
 * Per-practice, per-purpose, versioned data keys: created on first use, stored wrapped by the
 * KEK in `data_keys`, unwrapped into a small in-memory cache (plaintext keys live nowhere else).
 * All reads go through the caller's tenant transaction (RLS).
 *
 * NOTE: cached keys live at most `ttlMs`; a key shredded by another replica stops working there
 * within that time (this process evicts at once).
 */
export class Keyring {
  readonly #cache = new Map<string, { key: SecretKey; at: number }>();

  constructor(
    readonly provider: KeyProvider,
    private readonly options: { maxEntries?: number; ttlMs?: number; now?: () => number } = {},
  ) {}

  /**
   * The active key for new ciphertexts, created (version 1) if the practice has none. SECURITY:
   * the row is read FOR SHARE, so a rotation (which locks it FOR UPDATE) waits for this
   * transaction: no value is written under a version the re-encryption has already passed.
   */
  async active(trx: Knex.Transaction, practiceId: string, purpose: Purpose): Promise<VersionedKey> {
    let row = await activeKeyForShare(trx, practiceId, purpose);
    if (!row) {
      await this.create(trx, practiceId, purpose, 1);
      row = await activeKeyForShare(trx, practiceId, purpose);
      if (!row) throw new KeyNotFoundError(`no active ${purpose} key for practice ${practiceId}`);
    }
    return { version: row.version, key: await this.unwrapRow(practiceId, purpose, row) };
  }

  /** A specific version (to decrypt). Throws KeyDestroyedError after shredding, KeyNotFoundError if it never existed. */
  async version(trx: Knex.Transaction, practiceId: string, purpose: Purpose, version: number): Promise<SecretKey> {
    const cached = this.#fromCache(practiceId, purpose, version);
    if (cached) return cached;
    const row = await keyVersion(trx, practiceId, purpose, version);
    if (!row) throw new KeyNotFoundError(`no ${purpose} key v${version} for practice ${practiceId}`);
    return this.unwrapRow(practiceId, purpose, row);
  }

  /** Every version still usable (active first, then retired): blind-index lookups during a rotation. */
  async usable(trx: Knex.Transaction, practiceId: string, purpose: Purpose): Promise<VersionedKey[]> {
    const active = await this.active(trx, practiceId, purpose);
    const retired = await retiredKeys(trx, practiceId, purpose);
    const rest = await Promise.all(retired.map(async (r) => ({ version: r.version, key: await this.unwrapRow(practiceId, purpose, r) })));
    return [active, ...rest];
  }

  /** Generates a new data key, wraps it under the active KEK and stores it as the active version. */
  async create(trx: Knex.Transaction, practiceId: string, purpose: Purpose, version: number): Promise<void> {
    const plaintext = randomBytes(32);
    const { kekId, wrapped } = await this.provider.wrap(plaintext, wrapContext(practiceId, purpose, version));
    plaintext.fill(0);
    if (await insertDataKey(trx, { practice_id: practiceId, purpose, version, kek_id: kekId, wrapped })) {
      await recordKeyEvent(trx, practiceId, { action: 'created', purpose, version, kekId });
    }
  }

  /** Forgets every cached key of a practice (after rotation or shredding). */
  evict(practiceId: string): void {
    for (const [k, v] of this.#cache) {
      if (k.startsWith(`${practiceId}|`)) {
        v.key.wipe();
        this.#cache.delete(k);
      }
    }
  }

  async unwrapRow(practiceId: string, purpose: Purpose, row: DataKeyRow): Promise<SecretKey> {
    if (row.status === 'destroyed' || !row.wrapped || !row.kek_id) throw new KeyDestroyedError(practiceId, purpose, row.version);
    const cached = this.#fromCache(practiceId, purpose, row.version);
    if (cached) return cached;
    const bytes = await this.provider.unwrap(row.kek_id, row.wrapped, wrapContext(practiceId, purpose, row.version));
    const key = new SecretKey(bytes);
    bytes.fill(0);
    this.#toCache(practiceId, purpose, row.version, key);
    return key;
  }

  #now(): number {
    return this.options.now?.() ?? Date.now();
  }

  #fromCache(practiceId: string, purpose: Purpose, version: number): SecretKey | undefined {
    const id = cacheId(practiceId, purpose, version);
    const hit = this.#cache.get(id);
    if (!hit) return undefined;
    if (this.#now() - hit.at > (this.options.ttlMs ?? 300_000)) {
      this.#cache.delete(id);
      return undefined;
    }
    // Re-insert: Map order doubles as least-recently-used order.
    this.#cache.delete(id);
    this.#cache.set(id, hit);
    return hit.key;
  }

  #toCache(practiceId: string, purpose: Purpose, version: number, key: SecretKey): void {
    this.#cache.set(cacheId(practiceId, purpose, version), { key, at: this.#now() });
    const max = this.options.maxEntries ?? 1000;
    while (this.#cache.size > max) {
      const oldest = this.#cache.keys().next().value as string;
      this.#cache.delete(oldest);
    }
  }
}

/** The actor recorded by withPractice for this transaction ("user:…", "system:…"). */

/** The one writer of `key_events`: ids, versions and the transaction's actor, never key material. */
export async function recordKeyEvent(
  trx: Knex.Transaction,
  practiceId: string,
  event: { action: 'created' | 'rotated' | 'reencrypted' | 'rewrapped' | 'shredded'; purpose?: Purpose; version?: number; kekId?: string; count?: number },
): Promise<void> {
  await insertKeyEvent(trx, {
    practice_id: practiceId,
    action: event.action,
    purpose: event.purpose ?? null,
    version: event.version ?? null,
    kek_id: event.kekId ?? null,
    count: event.count ?? null,
    actor: (await currentActor(trx)) ?? 'unknown',
  });
}
