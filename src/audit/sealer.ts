import type { Knex } from 'knex';
import type { Logger } from '../config/logger.js';
import type { Db } from '../db/tenant.js';
import { AUDIT_ROW_COLUMNS, GENESIS, chainHash, type AuditRow } from './canonical.js';

const SEALER = { kind: 'system', id: 'audit-sealer' } as const;

/**
 * Seals a practice's waiting events: the next sequence numbers in the order the sealer sees them,
 * each hash chained to the previous one. One sealer per practice at a time (transaction-scoped
 * advisory lock; a busy practice is skipped, not waited for). Returns how many were sealed.
 */
export async function sealPractice(db: Db, practiceId: string, batchSize = 5000): Promise<number> {
  return db.withPractice(practiceId, SEALER, async (trx) => {
    const lock = await trx.raw<{ rows: { ok: boolean }[] }>("SELECT pg_try_advisory_xact_lock(hashtextextended('enamel-audit-seal:' || ?, 0)) AS ok", [practiceId]);
    if (!lock.rows[0]?.ok) return 0;
    const head = await trx('audit_events').whereNotNull('hash').orderBy('audit_events.seq', 'desc').first<{ seq: string; hash: Buffer } | undefined>(trx.raw('seq::text AS seq'), 'hash');
    const rows = await trx('audit_events')
      .whereNull('hash')
      .orderBy('id')
      .limit(batchSize)
      .select<AuditRow[]>(AUDIT_ROW_COLUMNS.map((c) => trx.raw(c)));
    if (rows.length === 0) return 0;
    let seq = BigInt(head?.seq ?? 0);
    let prev: Buffer = head?.hash ?? GENESIS;
    const ids: string[] = [];
    const seqs: string[] = [];
    const prevs: Buffer[] = [];
    const hashes: Buffer[] = [];
    for (const row of rows) {
      seq += 1n;
      const hash = chainHash(prev, row, seq.toString());
      ids.push(row.id);
      seqs.push(seq.toString());
      prevs.push(prev);
      hashes.push(hash);
      prev = hash;
    }
    await trx.raw(
      `UPDATE audit_events AS a
          SET seq = v.seq, prev_hash = v.prev, hash = v.hash, sealed_at = clock_timestamp()
         FROM (SELECT unnest(?::bigint[]) AS id, unnest(?::bigint[]) AS seq, unnest(?::bytea[]) AS prev, unnest(?::bytea[]) AS hash) AS v
        WHERE a.id = v.id`,
      [ids, seqs, prevs, hashes],
    );
    return rows.length;
  });
}

/** Seals every practice that has waiting events, until none is left. */
export async function sealAll(db: Db, batchSize?: number): Promise<number> {
  let total = 0;
  for (;;) {
    const practices = await unsealedPractices(db.knex);
    let sealed = 0;
    for (const id of practices) sealed += await sealPractice(db, id, batchSize);
    total += sealed;
    if (sealed === 0) return total;
  }
}

export async function unsealedPractices(knex: Knex): Promise<string[]> {
  const r = await knex.raw<{ rows: { id: string }[] }>('SELECT enamel_audit_unsealed_practices() AS id');
  return r.rows.map((x) => x.id);
}

/**
 * Runs the sealer every `intervalMs` in this process (every replica runs one; the advisory lock
 * keeps them from sealing the same practice at once). An event stays unsealed for at most about
 * one interval plus one sealing pass. Returns a stop function that waits for the pass in flight.
 */
export function startSealer(db: Db, logger: Logger, intervalMs = 1000): () => Promise<void> {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();
  const tick = (): void => {
    running = sealAll(db)
      .then(
        () => undefined,
        (err: unknown) => logger.error({ err }, 'audit sealer failed; events stay unsealed until the next pass'),
      )
      .finally(() => {
        if (!stopped) timer = setTimeout(tick, intervalMs);
      });
  };
  timer = setTimeout(tick, intervalMs);
  return async () => {
    stopped = true;
    if (timer) clearTimeout(timer);
    await running;
  };
}
