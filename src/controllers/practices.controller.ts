import type { RequestHandler } from 'express';
import { renderError } from '../middleware/errors.js';
import type { Db } from '../db/tenant.js';
import { getFrontPage } from '../services/practices/front-page.service.js';
import { practiceSlugParams } from '../validation/practice.schema.js';

/** GET /p/:slug — a practice's public front page (name, locations, phone). */
export function show(db: Db): RequestHandler {
  return async (req, res) => {
    const params = practiceSlugParams.safeParse(req.params);
    // NOTE: a malformed slug is simply not a practice: the same 404 as an unknown one.
    if (!params.success) return renderError(res, 404);
    const page = await getFrontPage(db, params.data.slug);
    if (!page) return renderError(res, 404);
    res.render('practices/show', { title: page.name, practice: page, slug: params.data.slug });
  };
}
