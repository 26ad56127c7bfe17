import { randomUUID } from 'node:crypto';
import type { Knex } from 'knex';
import { raiseAlert } from '../../alerts/alerts.js';
import { audit } from '../../audit/record.js';
import type { Keyring } from '../../crypto/keyring.js';
import type { Db } from '../../db/tenant.js';
import { enqueue } from '../../messaging/outbox.js';
import { PRIVILEGED_PERMISSIONS } from '../../permissions.js';
import { AccessDenied, authorize, ensure, type StaffActor } from '../../policies/index.js';
import {
  activeAccounts,
  activeOwnerEmails,
  breakGlassCounts,
  decideItem,
  findItem,
  findReview,
  findReviewByPeriod,
  inactiveAccounts,
  insertItems,
  insertReview,
  listItems,
  listReviews,
  markOverdueAlerted,
  overdueReviews,
  signOffReview,
  type ItemSnapshot,
  type ReviewItemRow,
  type ReviewRow,
} from '../../queries/access-reviews.queries.js';
import { allPracticeIds, findCurrentPractice } from '../../queries/practices.queries.js';
import { findPracticeRetention } from '../../queries/retention.queries.js';
import { findUserById } from '../../queries/users.queries.js';
import { deactivateWithChecklist } from '../users/deactivation.js';
import { accessOfAccounts } from '../users/account-access.js';
import { staffEvent as event, staffWork as work } from '../staff-work.js';
import type { FormResult, Meta } from '../../shared/types.js';

/**
 * Access reviews (HIPAA §164.308(a)(4), §164.308(a)(3)(ii)(B)): every quarter — and on demand — a
 * review per practice lists every active account with its roles, locations, last sign-in, MFA and
 * break-glass uses, flagged (no MFA, privileged, unused 90 days, break-glass); the owner keeps or
 * revokes each line (revoking ends the account's sessions at once) and signs the review off with
 * their name. Unsigned past the due date → an alert (once) and a banner for owners. Past reviews stay
 * as evidence. Also: accounts unused for the practice's period are disabled automatically.
 */

export const REVIEW_DUE_DAYS = 30;
const UNUSED_DAYS = 90;
const DAY = 86_400_000;

export function quarterOf(now: Date): string {
  return `${now.getUTCFullYear()}-Q${Math.floor(now.getUTCMonth() / 3) + 1}`;
}

/** Builds a review with one line per active account (inside withPractice). */
async function buildReview(trx: Knex.Transaction, practiceId: string, period: string, now: Date, createdBy: string | null): Promise<string> {
  const id = randomUUID();
  await insertReview(trx, { id, practice_id: practiceId, period, created_at: now, due_at: new Date(now.getTime() + REVIEW_DUE_DAYS * DAY), created_by: createdBy });
  const users = await activeAccounts(trx);
  const access = await accessOfAccounts(trx, users);
  const glass = await breakGlassCounts(trx, new Date(now.getTime() - UNUSED_DAYS * DAY));
  await insertItems(
    trx,
    users.map((u) => {
      const { roles: held, roleNames, locationNames } = access.get(u.id)!;
      const snapshot: ItemSnapshot = {
        displayName: u.display_name,
        email: u.email,
        roles: roleNames,
        locations: locationNames,
        lastLoginAt: u.last_login_at?.toISOString() ?? null,
        mfa: u.mfa_enrolled_at !== null,
        isOwner: u.is_owner,
        breakGlassUses: glass.get(u.id) ?? 0,
      };
      const privileged = u.is_owner || held.some((r) => r.permissions.some((p) => PRIVILEGED_PERMISSIONS.includes(p)));
      const flags = [
        ...(u.mfa_enrolled_at ? [] : ['no_mfa']),
        ...(privileged ? ['privileged'] : []),
        ...((u.last_login_at ?? u.created_at) < new Date(now.getTime() - UNUSED_DAYS * DAY) ? ['unused_90_days'] : []),
        ...(snapshot.breakGlassUses > 0 ? ['break_glass'] : []),
      ];
      return { id: randomUUID(), practice_id: practiceId, review_id: id, user_id: u.id, snapshot, flags };
    }),
  );
  return id;
}

/** The job's part: this quarter's review for every practice (once), and an alert per overdue review (once). */
export async function runAccessReviews(db: Db, now: Date): Promise<{ created: number; overdue: number }> {
  const counts = { created: 0, overdue: 0 };
  const system = { kind: 'system', id: 'access-reviews' } as const;
  for (const practiceId of await allPracticeIds(db.knex)) {
    await db.withPractice(practiceId, system, async (trx) => {
      const r = await findPracticeRetention(trx);
      if (r.purged_at) return;
      const period = quarterOf(now);
      if (!(await findReviewByPeriod(trx, period))) {
        const id = await buildReview(trx, practiceId, period, now, null);
        await audit.record(trx, { practiceId, actor: system, action: 'access_review_create', resource: { type: 'access_review', id }, outcome: 'allowed' });
        counts.created++;
      }
      for (const review of await overdueReviews(trx, now)) {
        if (review.overdue_alerted_at) continue;
        await raiseAlert(trx, { practiceId, kind: 'review_overdue', severity: 'warning', details: { target_type: 'access_review', target_id: review.id } });
        await markOverdueAlerted(trx, review.id, now);
        counts.overdue++;
      }
    });
  }
  return counts;
}

/**
 * Disables every active account (never an owner) unused for the practice's period: sessions end at
 * once; each is audited; the owners get an alert and an email naming only how many.
 */
export async function disableInactiveAccounts(d: { db: Db; keyring: Keyring; publicUrl?: URL | undefined }, now: Date): Promise<{ disabled: number }> {
  let disabled = 0;
  const system = { kind: 'system', id: 'inactive-accounts' } as const;
  for (const practiceId of await allPracticeIds(d.db.knex)) {
    await d.db.withPractice(practiceId, system, async (trx) => {
      const r = await findPracticeRetention(trx);
      if (r.purged_at) return;
      const stale = await inactiveAccounts(trx, new Date(now.getTime() - r.inactive_account_days * DAY));
      for (const u of stale) await deactivateWithChecklist(trx, practiceId, u.id, 'inactive', now, (e) => ({ practiceId, actor: system, ...e }));
      if (stale.length === 0) return;
      disabled += stale.length;
      await raiseAlert(trx, { practiceId, kind: 'accounts_disabled', severity: 'info', details: { count: stale.length } });
      const practice = await findCurrentPractice(trx);
      if (d.publicUrl && practice) {
        for (const to of await activeOwnerEmails(trx)) {
          await enqueue(trx, d.keyring, { practiceId, template: 'accounts_disabled_notice', to, params: { practiceName: practice.name, link: new URL(`/p/${practice.slug}/users`, d.publicUrl).toString() } });
        }
      }
    });
  }
  return { disabled };
}

// ---- Staff pages ---------------------------------------------------------------------------

export interface ReviewSummary {
  id: string;
  period: string;
  createdAt: Date;
  dueAt: Date;
  signedOffAt: Date | null;
  signedOffName: string | null;
  overdue: boolean;
}

const summary = (r: ReviewRow, now: Date): ReviewSummary => ({ id: r.id, period: r.period, createdAt: r.created_at, dueAt: r.due_at, signedOffAt: r.signed_off_at, signedOffName: r.signed_off_name, overdue: !r.signed_off_at && r.due_at <= now });

export async function accessReviews(db: Db, actor: StaffActor, meta: Meta): Promise<ReviewSummary[]> {
  ensure(authorize(actor, 'compliance.reviewAccess'), { permission: 'compliance.manage' });
  return work(db, actor, async (trx) => (await listReviews(trx)).map((r) => summary(r, meta.now)));
}

export async function startReview(db: Db, actor: StaffActor, meta: Meta): Promise<string> {
  ensure(authorize(actor, 'compliance.reviewAccess'), { permission: 'compliance.manage' });
  return work(db, actor, async (trx) => {
    const period = `on-demand-${meta.now.toISOString().replace(/[-:]/g, '').slice(0, 15)}`;
    const existing = await findReviewByPeriod(trx, period);
    if (existing) return existing.id;
    const id = await buildReview(trx, actor.practiceId, period, meta.now, actor.id);
    await audit.record(trx, event(actor, meta, { action: 'access_review_create', resource: { type: 'access_review', id }, outcome: 'allowed' }));
    return id;
  });
}

export interface ReviewView extends ReviewSummary {
  items: (Omit<ReviewItemRow, 'review_id'> & { decidedByName: string | null })[];
}

export async function accessReview(db: Db, actor: StaffActor, id: string, meta: Meta): Promise<ReviewView> {
  ensure(authorize(actor, 'compliance.reviewAccess'), { permission: 'compliance.manage' });
  return work(db, actor, async (trx) => {
    const review = await findReview(trx, id);
    if (!review) throw new AccessDenied({ resource: { type: 'access_review', id } });
    const items = await listItems(trx, id);
    const names = new Map(items.map((i) => [i.user_id, i.snapshot.displayName]));
    return { ...summary(review, meta.now), items: items.map((i) => ({ ...i, decidedByName: i.decided_by ? (names.get(i.decided_by) ?? 'another administrator') : null })) };
  });
}

/** The review a line belongs to (another practice's line is not found). */
export async function reviewOfItem(db: Db, actor: StaffActor, itemId: string): Promise<string> {
  ensure(authorize(actor, 'compliance.reviewAccess'), { permission: 'compliance.manage' });
  return work(db, actor, async (trx) => {
    const item = await findItem(trx, itemId);
    if (!item) throw new AccessDenied({ resource: { type: 'access_review', id: itemId } });
    return item.review_id;
  });
}

/** Keeps or revokes one line. Revoking deactivates the account and ends its sessions at once. */
export async function decideReviewItem(db: Db, actor: StaffActor, itemId: string, decision: 'keep' | 'revoke', meta: Meta): Promise<{ reviewId: string; error?: string }> {
  ensure(authorize(actor, 'compliance.reviewAccess'), { permission: 'compliance.manage' });
  return work(db, actor, async (trx) => {
    const item = await findItem(trx, itemId);
    if (!item) throw new AccessDenied({ resource: { type: 'access_review', id: itemId } });
    const review = await findReview(trx, item.review_id);
    if (!review) throw new AccessDenied({ resource: { type: 'access_review' } });
    if (review.signed_off_at) return { reviewId: review.id, error: 'This review is signed off; start a new one to change access.' };
    if (decision === 'revoke') {
      const user = await findUserById(trx, item.user_id);
      if (user && !authorize(actor, 'user.deactivate', { practiceId: user.practice_id, id: user.id, isOwner: user.is_owner })) {
        return { reviewId: review.id, error: 'You cannot revoke your own access or an owner’s here.' };
      }
      if (user && user.status !== 'deactivated') await deactivateWithChecklist(trx, actor.practiceId, user.id, 'access_review', meta.now, (e) => event(actor, meta, e), review.id);
    }
    await decideItem(trx, itemId, { decision, decided_by: actor.id, decided_at: meta.now });
    await audit.record(trx, event(actor, meta, { action: 'access_review_decide', resource: { type: 'access_review', id: review.id }, outcome: 'allowed', details: { target_type: 'user', target_id: item.user_id } }));
    return { reviewId: review.id };
  });
}

export async function signOff(db: Db, actor: StaffActor, reviewId: string, name: string, meta: Meta): Promise<FormResult<null>> {
  ensure(authorize(actor, 'compliance.reviewAccess'), { permission: 'compliance.manage' });
  return work(db, actor, async (trx) => {
    const review = await findReview(trx, reviewId);
    if (!review) throw new AccessDenied({ resource: { type: 'access_review', id: reviewId } });
    if (review.signed_off_at) return { ok: false, error: 'This review is already signed off.' };
    const open = (await listItems(trx, reviewId)).filter((i) => !i.decision).length;
    if (open > 0) return { ok: false, error: `Keep or revoke every line first (${open} left).` };
    await signOffReview(trx, reviewId, { signed_off_by: actor.id, signed_off_name: name, signed_off_at: meta.now });
    await audit.record(trx, event(actor, meta, { action: 'access_review_signoff', resource: { type: 'access_review', id: reviewId }, outcome: 'allowed' }));
    return { ok: true, value: null };
  });
}
