import { randomUUID } from 'node:crypto';
import type { Knex } from 'knex';
import { raiseAlert } from '../../alerts/alerts.js';
import { audit, type AuditEventInput } from '../../audit/record.js';
import type { KeyProvider } from '../../crypto/key-provider.js';
import { INSTALLATION_ID, type Db } from '../../db/tenant.js';
import { AccessDenied } from '../../policies/index.js';
import {
  decideItem,
  findItem,
  findReview,
  findReviewByPeriod,
  insertItems,
  insertReview,
  listItems,
  listReviews,
  markOverdueAlerted,
  overdueReviews,
  signOffReview,
  type ItemSnapshot,
  type ReviewRow,
} from '../../queries/access-reviews.queries.js';
import { listOperators } from '../../queries/operators.queries.js';
import { quarterOf, REVIEW_DUE_DAYS, type ReviewSummary, type ReviewView } from '../compliance/access-reviews.service.js';
import type { FormResult, Meta } from '../../shared/types.js';
import { deactivateOperator } from './operator-accounts.service.js';
import type { OperatorActor } from './operators.service.js';

/**
 * The installation's quarterly access review: every operator account (all privileged), with its
 * last sign-in, kept or revoked by another operator (revoking deactivates the account: sessions end,
 * credentials replaced, support grants revoked), signed off by name. Same tables as the practices'
 * reviews, in the installation tenant; unsigned past its due date → one installation alert.
 */

const DAY = 86_400_000;
const UNUSED_DAYS = 90;

const event = (actor: AuditEventInput['actor'], meta: Pick<Meta, 'ip' | 'requestId'> | undefined, e: Omit<AuditEventInput, 'practiceId' | 'actor'>): AuditEventInput => ({
  practiceId: INSTALLATION_ID,
  actor,
  ...(meta ? { ip: meta.ip, requestId: meta.requestId } : {}),
  ...e,
});

async function buildReview(trx: Knex.Transaction, period: string, now: Date, createdBy: string | null): Promise<string> {
  const id = randomUUID();
  await insertReview(trx, { id, practice_id: INSTALLATION_ID, period, created_at: now, due_at: new Date(now.getTime() + REVIEW_DUE_DAYS * DAY), created_by: createdBy });
  const operators = (await listOperators(trx)).filter((o) => o.status === 'active');
  await insertItems(
    trx,
    operators.map((o) => {
      const snapshot: ItemSnapshot = { displayName: o.display_name, email: o.email, roles: ['Platform operator'], locations: [], lastLoginAt: o.last_login_at?.toISOString() ?? null, mfa: true, isOwner: false, breakGlassUses: 0 };
      const flags = ['privileged', ...((o.last_login_at ?? o.created_at) < new Date(now.getTime() - UNUSED_DAYS * DAY) ? ['unused_90_days'] : [])];
      return { id: randomUUID(), practice_id: INSTALLATION_ID, review_id: id, user_id: o.id, snapshot, flags };
    }),
  );
  return id;
}

/** The access-reviews job's installation part: this quarter's review (once), one alert per overdue review. */
export async function runInstallationReview(db: Db, now: Date): Promise<{ created: number; overdue: number }> {
  const system = { kind: 'system', id: 'access-reviews' } as const;
  return db.withPractice(INSTALLATION_ID, system, async (trx) => {
    const counts = { created: 0, overdue: 0 };
    const period = quarterOf(now);
    if (!(await findReviewByPeriod(trx, period))) {
      const id = await buildReview(trx, period, now, null);
      await audit.record(trx, event(system, undefined, { action: 'access_review_create', resource: { type: 'access_review', id }, outcome: 'allowed' }));
      counts.created++;
    }
    for (const review of await overdueReviews(trx, now)) {
      if (review.overdue_alerted_at) continue;
      await raiseAlert(trx, { practiceId: INSTALLATION_ID, kind: 'review_overdue', severity: 'warning', details: { target_type: 'access_review', target_id: review.id } });
      await markOverdueAlerted(trx, review.id, now);
      counts.overdue++;
    }
    return counts;
  });
}

const summary = (r: ReviewRow, now: Date): ReviewSummary => ({ id: r.id, period: r.period, createdAt: r.created_at, dueAt: r.due_at, signedOffAt: r.signed_off_at, signedOffName: r.signed_off_name, overdue: !r.signed_off_at && r.due_at <= now });

const asOperator = (op: OperatorActor) => ({ kind: 'operator' as const, id: op.id });

export function installationReviews(db: Db, op: OperatorActor, now: Date): Promise<ReviewSummary[]> {
  return db.withPractice(INSTALLATION_ID, asOperator(op), async (trx) => (await listReviews(trx)).map((r) => summary(r, now)));
}

export function startInstallationReview(db: Db, op: OperatorActor, meta: Meta): Promise<string> {
  return db.withPractice(INSTALLATION_ID, asOperator(op), async (trx) => {
    const period = `on-demand-${meta.now.toISOString().replace(/[-:]/g, '').slice(0, 15)}`;
    const existing = await findReviewByPeriod(trx, period);
    if (existing) return existing.id;
    const id = await buildReview(trx, period, meta.now, op.id);
    await audit.record(trx, event(asOperator(op), meta, { action: 'access_review_create', resource: { type: 'access_review', id }, outcome: 'allowed' }));
    return id;
  });
}

export function installationReview(db: Db, op: OperatorActor, id: string, now: Date): Promise<ReviewView> {
  return db.withPractice(INSTALLATION_ID, asOperator(op), async (trx) => {
    const review = await findReview(trx, id);
    if (!review) throw new AccessDenied({ resource: { type: 'access_review', id } });
    const items = await listItems(trx, id);
    const names = new Map((await listOperators(trx)).map((o) => [o.id, o.display_name]));
    return { ...summary(review, now), items: items.map((i) => ({ ...i, decidedByName: i.decided_by ? (names.get(i.decided_by) ?? 'another operator') : null })) };
  });
}

/** Keeps or revokes one operator's access (revoking deactivates the account; never one's own). Behind operator step-up. */
export async function decideInstallationItem(db: Db, provider: KeyProvider, op: OperatorActor, itemId: string, decision: 'keep' | 'revoke', meta: Meta): Promise<{ reviewId: string; error?: string }> {
  const found = await db.withPractice(INSTALLATION_ID, asOperator(op), async (trx) => {
    const item = await findItem(trx, itemId);
    const review = item ? await findReview(trx, item.review_id) : undefined;
    return item && review ? { item, review } : undefined;
  });
  if (!found) throw new AccessDenied({ resource: { type: 'access_review', id: itemId } });
  const { item, review } = found;
  if (review.signed_off_at) return { reviewId: review.id, error: 'This review is signed off; start a new one to change access.' };
  if (item.decision) return { reviewId: review.id };
  // SECURITY: a review of oneself is not a review: another operator decides this line (keep or revoke).
  if (item.user_id === op.id) return { reviewId: review.id, error: 'You cannot decide on your own access; another operator reviews your line. (An installation with one operator: create a second with `enamel operators create`.)' };
  const record = async (trx: Knex.Transaction) => {
    await decideItem(trx, itemId, { decision, decided_by: op.id, decided_at: meta.now });
    await audit.record(trx, event(asOperator(op), meta, { action: 'access_review_decide', resource: { type: 'access_review', id: review.id }, outcome: 'allowed', details: { target_type: 'operator', target_id: item.user_id } }));
  };
  if (decision === 'revoke') {
    // The deactivation and the decision commit together.
    const done = await deactivateOperator(db, provider, { kind: 'operator', id: op.id }, item.user_id, meta, record);
    if (done.ok) return { reviewId: review.id };
    if (!/already deactivated/.test(done.error)) return { reviewId: review.id, error: done.error };
  }
  await db.withPractice(INSTALLATION_ID, asOperator(op), record);
  return { reviewId: review.id };
}

export function signOffInstallationReview(db: Db, op: OperatorActor, reviewId: string, name: string, meta: Meta): Promise<FormResult<null>> {
  return db.withPractice(INSTALLATION_ID, asOperator(op), async (trx) => {
    const review = await findReview(trx, reviewId);
    if (!review) throw new AccessDenied({ resource: { type: 'access_review', id: reviewId } });
    if (review.signed_off_at) return { ok: false, error: 'This review is already signed off.' };
    const open = (await listItems(trx, reviewId)).filter((i) => !i.decision).length;
    if (open > 0) return { ok: false, error: `Keep or revoke every line first (${open} left).` };
    await signOffReview(trx, reviewId, { signed_off_by: op.id, signed_off_name: name, signed_off_at: meta.now });
    await audit.record(trx, event(asOperator(op), meta, { action: 'access_review_signoff', resource: { type: 'access_review', id: reviewId }, outcome: 'allowed' }));
    return { ok: true, value: null };
  });
}

/** The review a line belongs to (for redirects after a refused decision). */
export async function installationReviewOfItem(db: Db, op: OperatorActor, itemId: string): Promise<string> {
  const item = await db.withPractice(INSTALLATION_ID, asOperator(op), (trx) => findItem(trx, itemId));
  if (!item) throw new AccessDenied({ resource: { type: 'access_review', id: itemId } });
  return item.review_id;
}
