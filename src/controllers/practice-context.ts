import type { Request } from 'express';
import type { StaffSession } from '../auth/session.js';
import type { Db } from '../db/tenant.js';
import { activePracticeId } from '../services/practices/front-page.service.js';
import { practiceSlugParams } from '../validation/practice.schema.js';

/** The active practice named by `/p/:slug` (parsed by schema), or undefined. */
export async function practiceFromParams(db: Db, req: Request): Promise<{ id: string; slug: string } | undefined> {
  const p = practiceSlugParams.safeParse(req.params);
  if (!p.success) return undefined;
  const id = await activePracticeId(db, p.data.slug);
  return id ? { id, slug: p.data.slug } : undefined;
}

/** SECURITY: the signed-in staff session — only if it belongs to this practice. */
export function signedInStaff(req: Request, practiceId: string): StaffSession | undefined {
  const s = req.session?.staff;
  return s && s.stage === 'signed_in' && s.practiceId === practiceId ? s : undefined;
}
