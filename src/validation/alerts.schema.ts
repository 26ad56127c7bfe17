import { z } from 'zod';
import { form } from './text.js';
import { ALERT_KINDS, SEVERITIES } from '../alerts/alerts.js';

/** The alerts page's filters (query string: kinds and severities only, never data). A bad value falls back to "all". */
export const alertFilterQuery = z.object({
  state: z.enum(['open', 'acknowledged', 'all']).catch('open').default('open'),
  kind: z.enum(ALERT_KINDS).optional().catch(undefined),
  severity: z.enum(SEVERITIES).optional().catch(undefined),
});

export const acknowledgeForm = form({
  note: z.string().trim().min(3, 'Say in a few words what you found or did (at least 3 characters).').max(500, 'Keep the note under 500 characters.'),
});
