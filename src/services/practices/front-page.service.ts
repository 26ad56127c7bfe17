import type { Db } from '../../db/tenant.js';
import { ANONYMOUS } from '../../db/tenant.js';
import { addressLines } from '../../presenters/location.presenter.js';
import { findActivePracticeIdBySlug, findCurrentPractice, findPracticePhone, listLocations } from '../../queries/practices.queries.js';
import { practiceDirectory } from '../../queries/operators.queries.js';

/** What a practice's public front page shows: business information only, never PHI. */
export interface FrontPage {
  name: string;
  phone: string | null;
  locations: { name: string; addressLines: string[]; phone: string }[];
}

/** The id of the active practice at `/p/<slug>` (undefined for none or a suspended one). */
export function activePracticeId(db: Db, slug: string): Promise<string | undefined> {
  return findActivePracticeIdBySlug(db.knex, slug);
}

/** Loads an active practice's front page through its tenant context; undefined when there is none. */
export async function getFrontPage(db: Db, slug: string): Promise<FrontPage | undefined> {
  const practiceId = await findActivePracticeIdBySlug(db.knex, slug);
  if (!practiceId) return undefined;
  return db.withPractice(practiceId, ANONYMOUS, async (trx) => {
    const practice = await findCurrentPractice(trx);
    if (!practice) return undefined;
    const phone = await findPracticePhone(trx);
    const locations = await listLocations(trx);
    return {
      name: practice.name,
      phone,
      locations: locations.map((l) => ({
        name: l.name,
        addressLines: addressLines(l),
        phone: l.phone,
      })),
    };
  });
}

/** What the start page offers: the one practice's sign-in, or a box for a practice's address (several), or none yet. Never the list of practices. */
export type StartPage = { kind: 'one'; slug: string } | { kind: 'several' } | { kind: 'none' };

export async function startPage(db: Db): Promise<StartPage> {
  const active = (await practiceDirectory(db.knex)).filter((p) => p.status === 'active');
  if (active.length === 1) return { kind: 'one', slug: active[0]!.slug };
  return active.length === 0 ? { kind: 'none' } : { kind: 'several' };
}

/** An active practice's address name, or undefined (the start page's "your practice" box). */
export async function activePracticeSlug(db: Db, slug: string): Promise<string | undefined> {
  return (await findActivePracticeIdBySlug(db.knex, slug)) ? slug : undefined;
}
