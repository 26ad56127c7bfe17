import type { KeyProvider } from '../crypto/key-provider.js';
import type { Db } from '../db/tenant.js';
import { AUDIT_ROW_COLUMNS, GENESIS, chainHash, type AuditRow } from './canonical.js';
import { verifyCheckpointSignature, type Checkpoint } from './checkpoints.js';

export type ChainProblem =
  | 'missing' // a sequence number is absent: a row was deleted or its seq changed
  | 'prev_mismatch' // the row does not link to the row before it: rows reordered or replaced
  | 'hash_mismatch' // the row's content no longer matches its hash: edited
  | 'truncated' // the chain ends before a signed checkpoint
  | 'checkpoint_mismatch' // the chain's hash at a checkpoint differs from the signed head
  | 'bad_signature'; // a checkpoint's signature does not verify

export interface VerifyResult {
  practiceId: string;
  ok: boolean;
  checked: number;
  lastSeq: string;
  checkpoints: number;
  problem?: { kind: ChainProblem; seq: string };
}

const VERIFIER = { kind: 'system', id: 'audit-verifier' } as const;

/**
 * Recomputes a practice's chain and checks every signed checkpoint against it; reports the first
 * bad sequence number. Full: from sequence 1. Incremental: from the newest signed checkpoint,
 * after checking that the row at its sequence still has the signed head hash. Reads in
 * keyset-paged batches; memory stays flat.
 */
export async function verifyPractice(
  db: Db,
  provider: KeyProvider,
  practiceId: string,
  options: { batchSize?: number; incremental?: boolean } = {},
): Promise<VerifyResult> {
  const batchSize = options.batchSize ?? 10_000;
  const checkpoints = await db.withPractice(practiceId, VERIFIER, (trx) =>
    trx('audit_checkpoints')
      .orderBy('audit_checkpoints.seq')
      .select<{ seq: string; head_hash: Buffer; signed_at: Date; key_id: string; signature: Buffer }[]>(trx.raw('seq::text AS seq'), 'head_hash', 'signed_at', 'key_id', 'signature'),
  );
  const atSeq = new Map(checkpoints.map((c) => [c.seq, c]));
  const result = (extra: Partial<VerifyResult>, checked: number, lastSeq: bigint): VerifyResult => ({
    practiceId,
    ok: !extra.problem,
    checked,
    lastSeq: lastSeq.toString(),
    checkpoints: checkpoints.length,
    ...extra,
  });

  for (const c of checkpoints) {
    const publicKey = await provider.checkpointPublicKey(c.key_id);
    const cp: Checkpoint = { practiceId, seq: c.seq, headHash: c.head_hash, signedAt: c.signed_at.toISOString(), keyId: c.key_id, signature: c.signature };
    if (!publicKey || !verifyCheckpointSignature(cp, publicKey)) return result({ problem: { kind: 'bad_signature', seq: c.seq } }, 0, 0n);
  }

  let expected = 1n;
  let prev: Buffer = GENESIS;
  let checked = 0;
  const start = options.incremental ? checkpoints[checkpoints.length - 1] : undefined;
  if (start) {
    const row = await db.withPractice(practiceId, VERIFIER, (trx) =>
      trx('audit_events').where('audit_events.seq', start.seq).first<{ hash: Buffer | null } | undefined>('hash'),
    );
    if (!row) return result({ problem: { kind: 'truncated', seq: start.seq } }, 0, BigInt(start.seq) - 1n);
    if (!row.hash?.equals(start.head_hash)) return result({ problem: { kind: 'checkpoint_mismatch', seq: start.seq } }, 0, BigInt(start.seq) - 1n);
    expected = BigInt(start.seq) + 1n;
    prev = start.head_hash;
  }
  const fetchAfter = (afterSeq: bigint): Promise<AuditRow[]> =>
    db.withPractice(practiceId, VERIFIER, (trx) =>
      trx('audit_events')
        .whereNotNull('hash')
        .where('audit_events.seq', '>', afterSeq.toString())
        .orderBy('audit_events.seq')
        .limit(batchSize)
        .select<AuditRow[]>(AUDIT_ROW_COLUMNS.map((c) => trx.raw(c))),
    );
  // NOTE: the next batch is fetched while this one is hashed: database and CPU work overlap.
  let pending: Promise<AuditRow[]> | undefined = fetchAfter(expected - 1n);
  while (pending) {
    const rows: AuditRow[] = await pending;
    pending = rows.length === batchSize ? fetchAfter(BigInt(rows[rows.length - 1]!.seq!)) : undefined;
    for (const row of rows) {
      const seq = row.seq!;
      if (seq !== expected.toString()) return settle(pending, result({ problem: { kind: 'missing', seq: expected.toString() } }, checked, expected - 1n));
      if (!row.prev_hash || !row.prev_hash.equals(prev)) return settle(pending, result({ problem: { kind: 'prev_mismatch', seq } }, checked, expected - 1n));
      const hash = chainHash(prev, row, seq);
      if (!row.hash || !hash.equals(row.hash)) return settle(pending, result({ problem: { kind: 'hash_mismatch', seq } }, checked, expected - 1n));
      const cp = atSeq.size > 0 ? atSeq.get(seq) : undefined;
      if (cp && !cp.head_hash.equals(hash)) return settle(pending, result({ problem: { kind: 'checkpoint_mismatch', seq } }, checked, expected - 1n));
      prev = hash;
      expected += 1n;
      checked++;
    }
  }
  const lastSeq = expected - 1n;
  const beyond = checkpoints.find((c) => BigInt(c.seq) > lastSeq);
  if (beyond) return result({ problem: { kind: 'truncated', seq: (lastSeq + 1n).toString() } }, checked, lastSeq);
  return result({}, checked, lastSeq);
}

/** Returns `value` once a prefetch still in flight has settled (so no query outlives the call). */
async function settle<T>(pending: Promise<unknown> | undefined, value: T): Promise<T> {
  await pending?.catch(() => undefined);
  return value;
}
