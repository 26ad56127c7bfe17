import { z } from 'zod';

/** A practice's public slug, as it appears in /p/:slug. Same rule as the database CHECK. */
export const practiceSlugParams = z.object({
  slug: z.string().regex(/^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$/),
});
