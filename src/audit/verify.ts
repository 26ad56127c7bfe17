import type { KeyProvider } from '../crypto/key-provider.js';
import type { Db } from '../db/tenant.js';
import { Worker } from 'node:worker_threads';
import { codeExtension, isCompiled } from '../config/paths.js';
import { AUDIT_ROW_COLUMNS, GENESIS, canonical, type AuditRow } from './canonical.js';
import { firstBadHash, type HashJob } from './hash-worker.js';
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
  let checked: number;
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
  // NOTE: while one batch is hashed (in a worker thread for long chains), the next is fetched and
  // parsed: database, parsing and hashing overlap. Each row's hash is checked against its
  // predecessor's *stored* hash, so batches are independent; the first problem by sequence wins.
  const hasher = new BatchHasher();
  try {
    let pending: Promise<AuditRow[]> | undefined = fetchAfter(expected - 1n);
    let mainProblem: { index: number; kind: ChainProblem } | undefined;
    let offset = 0;
    while (pending && !mainProblem) {
      const rows: AuditRow[] = await pending;
      pending = rows.length === batchSize ? fetchAfter(BigInt(rows[rows.length - 1]!.seq!)) : undefined;
      const texts: string[] = [];
      const prevs = Buffer.allocUnsafe(rows.length * 32);
      const hashes = Buffer.allocUnsafe(rows.length * 32);
      for (const [i, row] of rows.entries()) {
        const seq = row.seq!;
        if (seq !== expected.toString()) {
          mainProblem = { index: offset + i, kind: 'missing' };
          break;
        }
        if (!row.prev_hash || !row.prev_hash.equals(prev) || !row.hash || row.hash.length !== 32) {
          mainProblem = { index: offset + i, kind: 'prev_mismatch' };
          break;
        }
        const cp = atSeq.size > 0 ? atSeq.get(seq) : undefined;
        if (cp && !cp.head_hash.equals(row.hash)) mainProblem = { index: offset + i, kind: 'checkpoint_mismatch' };
        texts.push(canonical(row, seq));
        prev.copy(prevs, i * 32);
        row.hash.copy(hashes, i * 32);
        prev = row.hash;
        expected += 1n;
        if (mainProblem) break;
      }
      hasher.submit(offset, { prevs: prevs.subarray(0, texts.length * 32), texts, hashes: hashes.subarray(0, texts.length * 32) }, rows.length === batchSize);
      offset += rows.length;
    }
    await pending?.catch(() => undefined);
    const badHash = await hasher.firstBad();
    const problemIndex = Math.min(badHash ?? Infinity, mainProblem?.index ?? Infinity);
    if (problemIndex !== Infinity) {
      // At the same row, a broken sequence or link is named before a wrong hash, a wrong hash before a checkpoint mismatch.
      const kind = mainProblem && mainProblem.index === problemIndex && (mainProblem.kind !== 'checkpoint_mismatch' || badHash !== problemIndex) ? mainProblem.kind : 'hash_mismatch';
      const startSeq = start ? BigInt(start.seq) + 1n : 1n;
      const seq = startSeq + BigInt(problemIndex);
      return result({ problem: { kind, seq: seq.toString() } }, problemIndex, seq - 1n);
    }
    checked = offset;
  } finally {
    await hasher.close();
  }
  const lastSeq = expected - 1n;
  const beyond = checkpoints.find((c) => BigInt(c.seq) > lastSeq);
  if (beyond) return result({ problem: { kind: 'truncated', seq: (lastSeq + 1n).toString() } }, checked, lastSeq);
  return result({}, checked, lastSeq);
}

/**
 * Hashes submitted batches: inline while the chain is short, in one worker thread once a full
 * batch shows it is long (a worker costs a start-up, worth it only for big chains).
 */
class BatchHasher {
  #worker: Worker | undefined;
  #results: Promise<{ offset: number; bad: number }>[] = [];
  #queue: Promise<unknown> = Promise.resolve();

  submit(offset: number, job: HashJob, long: boolean): void {
    if (!this.#worker && long) {
      const entry = new URL(`./hash-worker${codeExtension}`, import.meta.url);
      // NOTE: from TypeScript sources (tsx), a worker must register tsx before importing the entry.
      this.#worker = isCompiled
        ? new Worker(entry)
        : new Worker(`import('tsx/esm/api').then((m) => { m.register(); return import(${JSON.stringify(entry.href)}); })`, { eval: true });
    }
    const worker = this.#worker;
    if (!worker) {
      this.#results.push(Promise.resolve({ offset, bad: firstBadHash(job) }));
      return;
    }
    // One job at a time per worker, answered in order.
    const run = this.#queue.then(
      () =>
        new Promise<{ offset: number; bad: number }>((resolve, reject) => {
          const onExit = (code: number): void => reject(new Error(`audit hash worker exited (${code})`));
          worker.once('error', reject);
          worker.once('exit', onExit);
          worker.once('message', (bad: number) => {
            worker.off('error', reject);
            worker.off('exit', onExit);
            resolve({ offset, bad });
          });
          worker.postMessage(job);
        }),
    );
    this.#queue = run.catch(() => undefined);
    this.#results.push(run);
  }

  /** Index (over all submitted rows) of the first wrong stored hash, or undefined. */
  async firstBad(): Promise<number | undefined> {
    for (const r of await Promise.all(this.#results)) if (r.bad >= 0) return r.offset + r.bad;
    return undefined;
  }

  async close(): Promise<void> {
    await this.#queue;
    await this.#worker?.terminate();
  }
}
