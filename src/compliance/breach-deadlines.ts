/**
 * The HIPAA Breach Notification Rule's clocks, from the day a breach was discovered (docs/INCIDENTS.md):
 * - individuals: without unreasonable delay and within 60 days (§164.404(b));
 * - the media: within 60 days when more than 500 residents of one state are affected (§164.406);
 * - HHS: within 60 days when 500 or more are affected; for fewer, within 60 days after the end of
 *   the calendar year of discovery, in the annual log (§164.408(b), (c));
 * - a business associate's notice to the practice: within 60 days (§164.410(b)), or the shorter
 *   clock its agreement sets (the practice's `ba_notice_hours`, e.g. 72 hours).
 */

export const NOTICE_KINDS = ['individuals', 'media', 'hhs', 'ba_notice'] as const;
export type NoticeKind = (typeof NOTICE_KINDS)[number];

const DAY = 86_400_000;
export const NOTICE_DAYS = 60;
export const MEDIA_THRESHOLD = 500; // more than this many residents of one state
export const HHS_IMMEDIATE_THRESHOLD = 500; // this many or more: within 60 days, not the annual log

export interface BreachFacts {
  discoveredAt: Date;
  /** Affected patients per state (two-letter code, or '' when unknown). */
  byState: ReadonlyMap<string, number>;
  outcome: 'breach' | 'not_breach' | null;
  /** The incident was at (or discovered by) a business associate. */
  businessAssociate: boolean;
  /** The agreement's clock for the associate's notice, in hours; null: 60 days. */
  baNoticeHours: number | null;
}

export interface NoticeDue {
  kind: NoticeKind;
  dueAt: Date;
  rule: string;
}

/** The notices an incident requires, each with its due date. */
export function requiredNotices(f: BreachFacts): NoticeDue[] {
  const out: NoticeDue[] = [];
  if (f.businessAssociate) {
    out.push(
      f.baNoticeHours !== null
        ? { kind: 'ba_notice', dueAt: new Date(f.discoveredAt.getTime() + f.baNoticeHours * 3_600_000), rule: `the business associate agreement: within ${f.baNoticeHours} hours` }
        : { kind: 'ba_notice', dueAt: new Date(f.discoveredAt.getTime() + NOTICE_DAYS * DAY), rule: '§164.410(b): within 60 days' },
    );
  }
  if (f.outcome !== 'breach') return out;
  const total = [...f.byState.values()].reduce((a, b) => a + b, 0);
  const in60 = new Date(f.discoveredAt.getTime() + NOTICE_DAYS * DAY);
  out.push({ kind: 'individuals', dueAt: in60, rule: '§164.404(b): within 60 days of discovery' });
  if ([...f.byState.entries()].some(([state, n]) => state !== '' && n > MEDIA_THRESHOLD)) out.push({ kind: 'media', dueAt: in60, rule: '§164.406: more than 500 residents of one state — within 60 days' });
  if (total >= HHS_IMMEDIATE_THRESHOLD) out.push({ kind: 'hhs', dueAt: in60, rule: '§164.408(b): 500 or more — within 60 days' });
  else {
    const yearEnd = Date.UTC(f.discoveredAt.getUTCFullYear(), 11, 31, 23, 59, 59);
    out.push({ kind: 'hhs', dueAt: new Date(yearEnd + NOTICE_DAYS * DAY), rule: '§164.408(c): fewer than 500 — the annual log, within 60 days after the end of the year' });
  }
  return out;
}

export const NOTICE_LABELS: Record<NoticeKind, string> = {
  individuals: 'Notify each affected patient (letter)',
  media: 'Notify prominent media in the state',
  hhs: 'Report to HHS (breach portal)',
  ba_notice: 'Business associate’s notice to the practice',
};
