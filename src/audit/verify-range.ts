import type { Knex } from 'knex';
import { AUDIT_ROW_COLUMNS, canonical, linkHash, type AuditRow } from './canonical.js';

/**
 * Verifies one stretch of a practice's chain, (afterSeq, endSeq], given the stored hash of the row
 * at afterSeq: every row must carry the next sequence number, link to its predecessor's stored hash,
 * hash to its stored hash, and match any signed checkpoint at its sequence. Used by verify.ts on
 * the main thread and by range-worker.ts for the second half of a long chain, so both halves are
 * checked by the same code.
 */
export type RangeProblemKind = 'missing' | 'prev_mismatch' | 'hash_mismatch' | 'checkpoint_mismatch';

export interface RangeResult {
  /** Rows verified before the first problem (or all of them). */
  checked: number;
  problem?: { index: number; kind: RangeProblemKind };
  /** The last sequence number seen (afterSeq when none). */
  lastSeq: bigint;
}

export type FetchAfter = (afterSeq: bigint) => Promise<AuditRow[]>;

/** Keyset-paged reads of sealed rows after a sequence number, inside the practice's tenant context. */
export function fetcher(run: <T>(work: (trx: Knex.Transaction) => Promise<T>) => Promise<T>, batchSize: number, endSeq?: bigint): FetchAfter {
  return (afterSeq) =>
    run((trx) => {
      const q = trx('audit_events')
        .whereNotNull('hash')
        .where('audit_events.seq', '>', afterSeq.toString())
        .orderBy('audit_events.seq')
        .limit(batchSize)
        .select<AuditRow[]>(AUDIT_ROW_COLUMNS.map((c) => trx.raw(c)));
      if (endSeq !== undefined) q.where('audit_events.seq', '<=', endSeq.toString());
      return q;
    });
}

export async function verifyRange(fetch: FetchAfter, afterSeq: bigint, prevHash: Buffer, batchSize: number, checkpoints: ReadonlyMap<string, Buffer>): Promise<RangeResult> {
  let expected = afterSeq + 1n;
  let prev = prevHash;
  let index = 0;
  // NOTE: the next batch is requested before this one is checked: the database and the checking overlap.
  let pending: Promise<AuditRow[]> | undefined = fetch(afterSeq);
  while (pending) {
    const rows: AuditRow[] = await pending;
    pending = rows.length === batchSize ? fetch(BigInt(rows[rows.length - 1]!.seq!)) : undefined;
    for (const row of rows) {
      const seq = row.seq!;
      const fail = (kind: RangeProblemKind): RangeResult => ({ checked: index, problem: { index, kind }, lastSeq: expected - 1n });
      if (seq !== expected.toString()) {
        await pending?.catch(() => undefined);
        return fail('missing');
      }
      if (!row.prev_hash || !row.prev_hash.equals(prev) || !row.hash || row.hash.length !== 32) {
        await pending?.catch(() => undefined);
        return fail('prev_mismatch');
      }
      if (!linkHash(prev, canonical(row, seq)).equals(row.hash)) {
        await pending?.catch(() => undefined);
        return fail('hash_mismatch');
      }
      const signed = checkpoints.size > 0 ? checkpoints.get(seq) : undefined;
      if (signed && !signed.equals(row.hash)) {
        await pending?.catch(() => undefined);
        return fail('checkpoint_mismatch');
      }
      prev = row.hash;
      expected += 1n;
      index++;
    }
  }
  return { checked: index, lastSeq: expected - 1n };
}
