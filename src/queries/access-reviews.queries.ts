import type { Knex } from 'knex';

/** The only SQL of access reviews and inactive accounts. Runs inside withPractice. */

export interface ReviewRow {
  id: string;
  period: string;
  created_at: Date;
  due_at: Date;
  signed_off_by: string | null;
  signed_off_name: string | null;
  signed_off_at: Date | null;
  overdue_alerted_at: Date | null;
}

export interface ItemSnapshot {
  displayName: string;
  email: string;
  roles: string[];
  locations: string[];
  lastLoginAt: string | null;
  mfa: boolean;
  isOwner: boolean;
  breakGlassUses: number;
}

export interface ReviewItemRow {
  id: string;
  review_id: string;
  user_id: string;
  snapshot: ItemSnapshot;
  flags: string[];
  decision: 'keep' | 'revoke' | null;
  decided_by: string | null;
  decided_at: Date | null;
}

const REVIEW_COLUMNS = ['id', 'period', 'created_at', 'due_at', 'signed_off_by', 'signed_off_name', 'signed_off_at', 'overdue_alerted_at'] as const;

export function findReviewByPeriod(trx: Knex.Transaction, period: string): Promise<ReviewRow | undefined> {
  return trx('access_reviews').where({ period }).first(REVIEW_COLUMNS);
}

export function findReview(trx: Knex.Transaction, id: string): Promise<ReviewRow | undefined> {
  return trx('access_reviews').where({ id }).first(REVIEW_COLUMNS);
}

export function listReviews(trx: Knex.Transaction): Promise<ReviewRow[]> {
  return trx('access_reviews').orderBy('created_at', 'desc').limit(100).select(REVIEW_COLUMNS);
}

/** Unsigned reviews past their due date. */
export function overdueReviews(trx: Knex.Transaction, now: Date): Promise<ReviewRow[]> {
  return trx('access_reviews').whereNull('signed_off_at').where('due_at', '<=', now).select(REVIEW_COLUMNS);
}

export async function insertReview(trx: Knex.Transaction, row: { id: string; practice_id: string; period: string; created_at: Date; due_at: Date; created_by: string | null }): Promise<void> {
  await trx('access_reviews').insert(row);
}

export async function insertItems(trx: Knex.Transaction, rows: { id: string; practice_id: string; review_id: string; user_id: string; snapshot: ItemSnapshot; flags: string[] }[]): Promise<void> {
  if (rows.length) await trx('access_review_items').insert(rows.map((r) => ({ ...r, snapshot: JSON.stringify(r.snapshot) })));
}

export function listItems(trx: Knex.Transaction, reviewId: string): Promise<ReviewItemRow[]> {
  return trx('access_review_items').where({ review_id: reviewId }).orderByRaw("snapshot->>'displayName'").select('id', 'review_id', 'user_id', 'snapshot', 'flags', 'decision', 'decided_by', 'decided_at');
}

export function findItem(trx: Knex.Transaction, id: string): Promise<ReviewItemRow | undefined> {
  return trx('access_review_items').where({ id }).first('id', 'review_id', 'user_id', 'snapshot', 'flags', 'decision', 'decided_by', 'decided_at');
}

export function decideItem(trx: Knex.Transaction, id: string, change: { decision: 'keep' | 'revoke'; decided_by: string; decided_at: Date }): Promise<number> {
  return trx('access_review_items').where({ id }).update(change);
}

export function signOffReview(trx: Knex.Transaction, id: string, change: { signed_off_by: string; signed_off_name: string; signed_off_at: Date }): Promise<number> {
  return trx('access_reviews').where({ id }).whereNull('signed_off_at').update(change);
}

export function markOverdueAlerted(trx: Knex.Transaction, id: string, at: Date): Promise<number> {
  return trx('access_reviews').where({ id }).update({ overdue_alerted_at: at });
}

/** Active accounts with what a review line shows. */
export function activeAccounts(trx: Knex.Transaction): Promise<{ id: string; email: string; display_name: string; is_owner: boolean; mfa_enrolled_at: Date | null; last_login_at: Date | null; created_at: Date }[]> {
  return trx('users').where({ status: 'active' }).orderBy('display_name').select('id', 'email', 'display_name', 'is_owner', 'mfa_enrolled_at', 'last_login_at', 'created_at');
}

/** Break-glass grants per user since a time. */
export async function breakGlassCounts(trx: Knex.Transaction, since: Date): Promise<Map<string, number>> {
  const rows = await trx('break_glass_grants').where('granted_at', '>=', since).groupBy('user_id').select<{ user_id: string; n: string }[]>('user_id', trx.raw('count(*) AS n'));
  return new Map(rows.map((r) => [r.user_id, Number(r.n)]));
}

/** Active accounts (never an owner) unused since `before` (never signed in: since creation). */
export function inactiveAccounts(trx: Knex.Transaction, before: Date): Promise<{ id: string }[]> {
  return trx('users').where({ status: 'active', is_owner: false }).whereRaw('coalesce(last_login_at, created_at) < ?', [before]).select('id');
}

export function activeOwnerEmails(trx: Knex.Transaction): Promise<string[]> {
  return trx('users').where({ status: 'active', is_owner: true }).pluck('email');
}
