import type { RequestHandler } from 'express';
import { z } from 'zod';
import type { Config } from '../config/env.js';
import type { Keyring } from '../crypto/keyring.js';
import type { Db } from '../db/tenant.js';
import type { Clock } from '../shared/types.js';
import { todaysWork } from '../services/home/todays-work.service.js';
import { actorOf, requestMeta } from './request.js';
import { activePracticeSlug, startPage } from '../services/practices/front-page.service.js';

const practiceQuery = z.object({ practice: z.string().trim().toLowerCase().max(60).optional() });
const SLUG = /^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$/;

/**
 * GET / — the front door. One practice: straight to its sign-in. Several: a box for the practice's
 * address name (the list of practices is never shown). None yet: where an operator starts.
 */
export function index(config: Config, db: Db): RequestHandler {
  return async (req, res) => {
    const q = practiceQuery.safeParse(req.query ?? {});
    const typed = q.success ? q.data.practice : undefined;
    if (typed !== undefined) {
      const slug = typed.replace(/^.*\/p\//, '').replace(/\/.*$/, '');
      const found = SLUG.test(slug) ? await activePracticeSlug(db, slug) : undefined;
      if (found) return res.redirect(303, `/p/${found}/sign-in`);
      return res.status(404).render('home/index', { title: 'Enamel', demo: config.seedDemo, start: { kind: 'several' }, typed: typed.slice(0, 60), error: 'There is no practice at that address. Check the name your practice gave you (the part after /p/ in its address).' });
    }
    const start = await startPage(db);
    if (start.kind === 'one') return res.redirect(303, `/p/${start.slug}/sign-in`);
    res.render('home/index', { title: 'Enamel', demo: config.seedDemo, start, typed: '', error: undefined });
  };
}

/** GET /p/:slug/home — today's work for the signed-in staff member (each list for the roles that act on it). */
export function staffHome(d: { db: Db; keyring: Keyring; clock: Clock }): RequestHandler {
  return async (req, res) => {
    const actor = actorOf(res);
    const work = await todaysWork(d, actor, requestMeta(req, d.clock));
    res.render('staff/home', { title: 'Home', slug: actor.slug, work, csrfToken: res.locals.csrfToken });
  };
}
