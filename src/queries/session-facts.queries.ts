import type { Knex } from 'knex';

/** What the staff session check needs, read fresh on every request (one statement, no transaction). */
export interface StaffSessionFacts {
  /** The active practice the URL's slug names (undefined without a slug, or when none is active). */
  slugPracticeId: string | undefined;
  /** The practice's name (business information, not PHI: shown in the staff header). */
  practiceName: string;
  user: { status: string; is_owner: boolean; display_name: string; mfa_enrolled_at: Date | null; mfa_reset_at: Date | null; sessions_valid_after: Date | null } | undefined;
  settings: { session_idle_minutes: number; session_absolute_hours: number; mfa_required_for_all: boolean; date_format: string; timezone: string } | undefined;
  roles: { key: string; is_system: boolean; permissions: string[] }[];
  locations: string[];
  alerts: { count: number; critical: number };
}

type Raw = {
  slug_practice: string | null;
  practice_name: string | null;
  user: (Omit<NonNullable<StaffSessionFacts['user']>, 'mfa_enrolled_at' | 'mfa_reset_at' | 'sessions_valid_after'> & { mfa_enrolled_at: string | null; mfa_reset_at: string | null; sessions_valid_after: string | null }) | null;
  settings: StaffSessionFacts['settings'] | null;
  roles: StaffSessionFacts['roles'];
  locations: string[];
  alerts: { count: number; critical: number };
};

const date = (v: string | null): Date | null => (v === null ? null : new Date(v));

/** SECURITY: enamel_staff_session() (migration 24) sets the tenant context for this statement only. */
export async function staffSessionFacts(knex: Knex, practiceId: string, userId: string, slug: string | undefined): Promise<StaffSessionFacts> {
  const r = await knex.raw<{ rows: { facts: Raw }[] }>('SELECT enamel_staff_session(?, ?, ?) AS facts', [practiceId, userId, slug ?? null]);
  return parseFacts(r.rows[0]!.facts);
}

/** The facts as read with the session row: for whom, and the practice's slug while it is active. */
export interface LoadedSessionFacts extends StaffSessionFacts {
  practiceId: string;
  userId: string;
  practiceSlug: string | undefined;
}

/**
 * SECURITY: the unexpired session row and, for a staff session, its check's facts in one statement
 * (enamel_http_session, migration 25; the tenant context for this statement only).
 */
export async function httpSessionWithFacts(knex: Knex, sid: string, nowMs: number): Promise<{ sess: unknown; facts: LoadedSessionFacts | undefined } | undefined> {
  const r = await knex.raw<{ rows: { s: { sess: unknown; facts: (Raw & { practice_id: string; user_id: string; practice_slug: string | null }) | null } | null }[] }>('SELECT enamel_http_session(?, ?) AS s', [sid, nowMs / 1000]);
  const s = r.rows[0]?.s;
  if (!s) return undefined;
  const f = s.facts;
  return { sess: s.sess, facts: f ? { ...parseFacts(f), practiceId: f.practice_id, userId: f.user_id, practiceSlug: f.practice_slug ?? undefined } : undefined };
}

function parseFacts(f: Raw): StaffSessionFacts {
  return {
    slugPracticeId: f.slug_practice ?? undefined,
    practiceName: f.practice_name ?? '',
    user: f.user ? { ...f.user, mfa_enrolled_at: date(f.user.mfa_enrolled_at), mfa_reset_at: date(f.user.mfa_reset_at), sessions_valid_after: date(f.user.sessions_valid_after) } : undefined,
    settings: f.settings ?? undefined,
    roles: f.roles,
    locations: f.locations,
    alerts: f.alerts,
  };
}
