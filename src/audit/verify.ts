import type { KeyProvider } from '../crypto/key-provider.js';
import type { Db } from '../db/tenant.js';
import { Worker } from 'node:worker_threads';
import { codeExtension, isCompiled } from '../config/paths.js';
import type { Knex } from 'knex';
import { GENESIS } from './canonical.js';
import type { RangeJob } from './range-worker.js';
import { fetcher, verifyRange, type RangeResult } from './verify-range.js';
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
  options: { batchSize?: number; incremental?: boolean; parallel?: boolean } = {},
): Promise<VerifyResult> {
  const batchSize = options.batchSize ?? 10_000;
  const checkpoints = await db.withPractice(practiceId, VERIFIER, (trx) =>
    trx('audit_checkpoints')
      .orderBy('audit_checkpoints.seq')
      .select<{ seq: string; head_hash: Buffer; signed_at: Date; key_id: string; signature: Buffer }[]>(trx.raw('seq::text AS seq'), 'head_hash', 'signed_at', 'key_id', 'signature'),
  );
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
  const run = <T>(work: (trx: Knex.Transaction) => Promise<T>): Promise<T> => db.withPractice(practiceId, VERIFIER, work);
  const signedHeads = new Map(checkpoints.map((c) => [c.seq, c.head_hash]));
  const startAfter = expected - 1n;
  const range = await verifyChain(db, practiceId, run, startAfter, prev, batchSize, signedHeads, options.parallel !== false);
  if (range.problem) {
    const seq = startAfter + 1n + BigInt(range.problem.index);
    return result({ problem: { kind: range.problem.kind, seq: seq.toString() } }, range.problem.index, seq - 1n);
  }
  const lastSeq = range.lastSeq;
  const beyond = checkpoints.find((c) => BigInt(c.seq) > lastSeq);
  if (beyond) return result({ problem: { kind: 'truncated', seq: (lastSeq + 1n).toString() } }, range.checked, lastSeq);
  return result({}, range.checked, lastSeq);
}

/** The runtime role's connection string, so a worker can open its own connection (undefined: none). */
function connectionStringOf(db: Db): string | undefined {
  const connection = (db.knex.client as { config?: { connection?: unknown } }).config?.connection;
  const cs = typeof connection === 'string' ? connection : (connection as { connectionString?: unknown } | undefined)?.connectionString;
  return typeof cs === 'string' ? cs : undefined;
}

/**
 * The whole stretch after `startAfter`. A long chain (four batches or more) is split in two: the
 * second half is verified by a worker thread over its own connection while this thread verifies the
 * first, so both cores work; the first problem by sequence wins.
 */
async function verifyChain(
  db: Db,
  practiceId: string,
  run: <T>(work: (trx: Knex.Transaction) => Promise<T>) => Promise<T>,
  startAfter: bigint,
  prev: Buffer,
  batchSize: number,
  signedHeads: Map<string, Buffer>,
  parallel: boolean,
): Promise<RangeResult> {
  const connectionString = parallel ? connectionStringOf(db) : undefined;
  const head = connectionString
    ? await run(async (trx) => {
        const row = await trx('audit_events').whereNotNull('hash').max<{ head: string | null }>({ head: 'seq' }).first();
        return row?.head ? BigInt(row.head) : startAfter;
      })
    : startAfter;
  const span = head - startAfter;
  if (!connectionString || span < BigInt(4 * batchSize)) return verifyRange(fetcher(run, batchSize), startAfter, prev, batchSize, signedHeads);
  const mid = startAfter + span / 2n;
  const midRow = await run((trx) => trx('audit_events').where('audit_events.seq', mid.toString()).first<{ hash: Buffer | null } | undefined>('hash'));
  if (!midRow?.hash) return verifyRange(fetcher(run, batchSize), startAfter, prev, batchSize, signedHeads);
  const job: RangeJob = { connectionString, practiceId, afterSeq: mid.toString(), prevHash: midRow.hash, endSeq: head.toString(), batchSize, checkpoints: [...signedHeads].map(([seq, hash]) => [seq, hash]) };
  const second = runRangeWorker(job);
  second.catch(() => undefined); // awaited below; never an unhandled rejection meanwhile
  const first = await verifyRange(fetcher(run, batchSize, mid), startAfter, prev, batchSize, signedHeads);
  const later = await second;
  if (first.problem) return first;
  // CASE: the first half stopped short of the middle without a bad row: rows up to it are gone.
  if (first.lastSeq !== mid) return { checked: first.checked, problem: { index: first.checked, kind: 'missing' }, lastSeq: first.lastSeq };
  if (later.problem) return { checked: first.checked + later.checked, problem: { index: first.checked + later.problem.index, kind: later.problem.kind }, lastSeq: later.lastSeq };
  return { checked: first.checked + later.checked, lastSeq: later.lastSeq };
}

function runRangeWorker(job: RangeJob): Promise<RangeResult> {
  const entry = new URL(`./range-worker${codeExtension}`, import.meta.url);
  // NOTE: from TypeScript sources (tsx), a worker must register tsx before importing the entry.
  const worker = isCompiled
    ? new Worker(entry, { workerData: job })
    : new Worker(`import('tsx/esm/api').then((m) => { m.register(); return import(${JSON.stringify(entry.href)}); })`, { eval: true, workerData: job });
  return new Promise<RangeResult>((resolve, reject) => {
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`audit range worker exited (${code})`)));
    worker.once('message', (m: { error?: string; checked: number; problem?: RangeResult['problem']; lastSeq: string }) => {
      if (m.error) reject(new Error(`audit range worker: ${m.error}`));
      else resolve({ checked: m.checked, ...(m.problem ? { problem: m.problem } : {}), lastSeq: BigInt(m.lastSeq) });
    });
  });
}
