import type { Knex } from 'knex';
import type { AuditRow as ChainRow } from '../audit/canonical.js';
import type { VerifyResult } from '../audit/verify.js';

/** Reading the audit log (search, export, chain status). Runs inside withPractice. */

export interface AuditFilter {
  actorId?: string;
  patientId?: string;
  action?: string;
  outcome?: 'allowed' | 'denied' | 'failed';
  /** Inclusive, UTC. */
  from?: Date;
  /** Exclusive, UTC. */
  to?: Date;
}

/** An event as the views read it: the chained columns minus the seal, with its time as a Date. */
export type AuditRow = Omit<ChainRow, 'practice_id' | 'occurred_at' | 'prev_hash' | 'hash'> & { occurred_at: Date };

const COLUMNS = ['id', 'seq', 'occurred_at', 'actor_type', 'actor_id', 'action', 'resource_type', 'resource_id', 'patient_id', 'outcome', 'client_ip', 'request_id', 'reason', 'details'] as const;

function filtered(trx: Knex.Transaction, f: AuditFilter): Knex.QueryBuilder {
  const q = trx('audit_events');
  if (f.actorId) q.where({ actor_id: f.actorId });
  if (f.patientId) q.where({ patient_id: f.patientId });
  if (f.action) q.where({ action: f.action });
  if (f.outcome) q.where({ outcome: f.outcome });
  if (f.from) q.where('occurred_at', '>=', f.from);
  if (f.to) q.where('occurred_at', '<', f.to);
  return q;
}

/** One page, newest first, keyset-paged by id (`beforeId`: the last id of the previous page). */
export function searchAuditEvents(trx: Knex.Transaction, f: AuditFilter, page: { beforeId?: string; limit: number }): Promise<AuditRow[]> {
  const q = filtered(trx, f).orderBy('id', 'desc').limit(page.limit).select(COLUMNS);
  if (page.beforeId) q.where('id', '<', page.beforeId);
  return q;
}

export async function countAuditEvents(trx: Knex.Transaction, f: AuditFilter): Promise<number> {
  const [row] = await filtered(trx, f).count<{ n: string }[]>({ n: '*' });
  return Number(row?.n ?? 0);
}

/** Every matching event, oldest first (exports; the caller bounds the count first). */
export function allAuditEvents(trx: Knex.Transaction, f: AuditFilter): Promise<AuditRow[]> {
  return filtered(trx, f).orderBy('id', 'asc').select(COLUMNS);
}

export interface CheckpointSummary {
  seq: string;
  signed_at: Date;
  key_id: string;
}

export function latestCheckpoint(trx: Knex.Transaction): Promise<CheckpointSummary | undefined> {
  return trx('audit_checkpoints').orderBy('seq', 'desc').first('seq', 'signed_at', 'key_id');
}

export interface VerificationSummary {
  verified_at: Date;
  incremental: boolean;
  ok: boolean;
  checked: string;
  last_seq: string;
  checkpoints: number;
  problem: string | null;
  problem_seq: string | null;
}

export function latestVerification(trx: Knex.Transaction): Promise<VerificationSummary | undefined> {
  return trx('audit_verifications').orderBy('verified_at', 'desc').first('verified_at', 'incremental', 'ok', 'checked', 'last_seq', 'checkpoints', 'problem', 'problem_seq');
}

export async function insertVerification(trx: Knex.Transaction, r: VerifyResult, incremental: boolean): Promise<void> {
  await trx('audit_verifications').insert({
    practice_id: r.practiceId,
    incremental,
    ok: r.ok,
    checked: r.checked,
    last_seq: r.lastSeq,
    checkpoints: r.checkpoints,
    problem: r.problem?.kind ?? null,
    problem_seq: r.problem?.seq ?? null,
  });
}

/** How many of these actions one user performed in the last hour (database time, like occurred_at). */
export async function recentActionsOfUser(trx: Knex.Transaction, userId: string, actions: readonly string[]): Promise<number> {
  const [row] = await trx('audit_events')
    .where({ actor_type: 'user', actor_id: userId, outcome: 'allowed' })
    .whereIn('action', actions)
    .where('occurred_at', '>', trx.raw("now() - interval '1 hour'"))
    .count<{ n: string }[]>({ n: '*' });
  return Number(row?.n ?? 0);
}
