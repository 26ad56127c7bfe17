import type { Knex } from 'knex';
import { blindIndex, normalizeForIndex, type BlindIndexKind } from './blind-index.js';
import { CryptoError } from './errors.js';
import { decryptField, encryptField, fieldKeyVersion } from './field-cipher.js';
import type { Keyring } from './keyring.js';

/**
 * Typed encrypted columns. A repository declares its table once:
 *
 *   export const patientSecrets = encryptedColumns('patients', {
 *     last_name: { type: 'text', blindIndex: 'name' },   // + last_name_bidx bytea
 *     date_of_birth: { type: 'date', blindIndex: 'dob' },
 *     notes: { type: 'json' },
 *   });
 *
 * then writes `await patientSecrets.seal(pc, id, { last_name })` into the row, reads with
 * `await patientSecrets.open(pc, row)`, and searches with
 * `whereIn('last_name_bidx', await patientSecrets.lookup(pc, 'last_name', input))`.
 * It never touches bytes, IVs or keys. The table must have `id uuid` and `practice_id`.
 */

export type FieldType = 'text' | 'date' | 'json';
export interface ColumnSpec {
  type: FieldType;
  /** Exact-match index in `<column>_bidx`. */
  blindIndex?: BlindIndexKind;
  /** Further indexes of the same value, by column: `{ family_name_prefix_bidx: 'name-prefix' }`. */
  moreIndexes?: Readonly<Record<string, BlindIndexKind>>;
}

/** Every blind-index column of an encrypted column, with its kind (the exact one first). */
export function indexColumns(column: string, spec: ColumnSpec): [string, BlindIndexKind][] {
  return [...(spec.blindIndex ? [[`${column}_bidx`, spec.blindIndex] as [string, BlindIndexKind]] : []), ...Object.entries(spec.moreIndexes ?? {})];
}
type ValueOf<T extends FieldType> = T extends 'json' ? unknown : string;
export type PlainValues<S extends Record<string, ColumnSpec>> = { [K in keyof S]: ValueOf<S[K]['type']> | null };

/** The crypto handle of one practice inside one tenant transaction. */
export class PracticeCrypto {
  constructor(
    readonly keyring: Keyring,
    readonly trx: Knex.Transaction,
    readonly practiceId: string,
  ) {}
}

/**
 * A column whose signed content is fixed by a SHA-256 in another column (a signed note's body and
 * its content_hash): rotation checks the decrypted value against it before re-encrypting.
 */
export interface ContentHashSpec {
  column: string;
  hashColumn: string;
}

export interface EncryptedTable<S extends Record<string, ColumnSpec>> {
  readonly table: string;
  readonly columns: S;
  readonly contentHash?: ContentHashSpec;
  /** Encrypts the given values for row `rowId`; returns the column → bytea map (plus `<col>_bidx`). */
  seal(pc: PracticeCrypto, rowId: string, values: Partial<PlainValues<S>>): Promise<Record<string, Buffer | null>>;
  /** Decrypts the declared columns of a row (which must include `id`). */
  open(pc: PracticeCrypto, row: { id: string } & Record<string, unknown>): Promise<PlainValues<S>>;
  /**
   * The blind indexes to match for a search input (one per usable key version); [] for invalid
   * input. `index` is a column (its exact index) or the name of one of its `moreIndexes`.
   */
  lookup(pc: PracticeCrypto, index: string, input: string): Promise<Buffer[]>;
}

const registry = new Map<string, EncryptedTable<Record<string, ColumnSpec>>>();

/** Every declared encrypted table, in a stable order (re-encryption walks them). */
export function encryptedTables(): EncryptedTable<Record<string, ColumnSpec>>[] {
  return [...registry.values()].sort((a, b) => a.table.localeCompare(b.table));
}

const IDENT = /^[a-z_][a-z0-9_]{0,62}$/;

function encodeValue(type: FieldType, value: unknown): Buffer {
  if (type === 'json') return Buffer.from(JSON.stringify(value));
  if (typeof value !== 'string') throw new CryptoError(`expected a string for a ${type} field`);
  return Buffer.from(value, 'utf8');
}

function decodeValue(type: FieldType, bytes: Buffer): unknown {
  const text = bytes.toString('utf8');
  return type === 'json' ? (JSON.parse(text) as unknown) : text;
}

export function encryptedColumns<const S extends Record<string, ColumnSpec>>(table: string, columns: S, options: { contentHash?: ContentHashSpec } = {}): EncryptedTable<S> {
  const indexKinds = new Map(Object.entries(columns).flatMap(([c, spec]) => indexColumns(c, spec)));
  if (!IDENT.test(table) || ![...Object.keys(columns), ...indexKinds.keys()].every((c) => IDENT.test(c))) throw new CryptoError(`bad table or column name in ${table}`);
  if (registry.has(table)) throw new CryptoError(`encrypted columns of ${table} are declared twice`);

  const def: EncryptedTable<S> = {
    table,
    columns,
    ...(options.contentHash ? { contentHash: options.contentHash } : {}),
    async seal(pc, rowId, values) {
      const out: Record<string, Buffer | null> = {};
      const names = Object.keys(values).filter((c) => c in columns);
      if (names.length === 0) return out;
      const fieldKey = await pc.keyring.active(pc.trx, pc.practiceId, 'fields');
      const needsIndex = names.some((c) => indexColumns(c, columns[c]!).length > 0);
      const indexKey = needsIndex ? await pc.keyring.active(pc.trx, pc.practiceId, 'blind-index') : undefined;
      for (const column of names) {
        const spec = columns[column]!;
        const value = values[column as keyof S];
        const present = value !== null && value !== undefined;
        out[column] = present ? encryptField(fieldKey.key, fieldKey.version, encodeValue(spec.type, value), { practiceId: pc.practiceId, table, column, rowId }) : null;
        for (const [indexColumn, kind] of indexColumns(column, spec)) {
          const normalized = present && indexKey ? normalizeForIndex(kind, String(value)) : undefined;
          out[indexColumn] = normalized === undefined ? null : blindIndex(indexKey!.key, kind, normalized);
        }
      }
      return out;
    },
    async open(pc, row) {
      const out: Record<string, unknown> = {};
      for (const [column, spec] of Object.entries(columns)) {
        const envelope = row[column];
        if (envelope === null || envelope === undefined) {
          out[column] = null;
          continue;
        }
        if (!Buffer.isBuffer(envelope)) throw new CryptoError(`${table}.${column} is not a bytea value`);
        const key = await pc.keyring.version(pc.trx, pc.practiceId, 'fields', fieldKeyVersion(envelope));
        out[column] = decodeValue(spec.type, decryptField(key, envelope, { practiceId: pc.practiceId, table, column, rowId: row.id }));
      }
      return out as PlainValues<S>;
    },
    async lookup(pc, index, input) {
      const kind = columns[index]?.blindIndex ?? indexKinds.get(index);
      if (!kind) throw new CryptoError(`${table}.${index} is not a blind index`);
      const normalized = normalizeForIndex(kind, input);
      if (normalized === undefined) return [];
      const keys = await pc.keyring.usable(pc.trx, pc.practiceId, 'blind-index');
      return keys.map((k) => blindIndex(k.key, kind, normalized));
    },
  };
  registry.set(table, def as unknown as EncryptedTable<Record<string, ColumnSpec>>);
  return def;
}
