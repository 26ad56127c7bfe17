import { z } from 'zod';
import { form } from './text.js';

const intIn = (min: number, max: number, message: string) => z.coerce.number(message).int(message).min(min, message).max(max, message);

/** The owner's security settings form. Each field's message names its range. */
export const securitySettingsForm = form({
  sessionIdleMinutes: intIn(5, 30, 'Sign out after 5 to 30 minutes without activity.'),
  sessionAbsoluteHours: intIn(1, 12, 'The longest session is 1 to 12 hours.'),
  mfaPolicy: z.enum(['everyone', 'administrators'], 'Choose who must use two-step sign-in.'),
  portalLinkDays: intIn(1, 30, 'Patient links last 1 to 30 days.'),
  exportVolumeThreshold: intIn(5, 10000, 'The export alert threshold is 5 to 10,000 an hour.'),
  securityContactUserId: z.union([z.literal(''), z.uuid('Choose the security contact from the list.')]).transform((v) => (v === '' ? null : v)),
  auditRetentionYears: intIn(6, 100, 'Audit events are kept 6 years at least (HIPAA), at most 100.'),
});

export type SecuritySettingsFields = keyof z.input<typeof securitySettingsForm>;

/** Every problem of the form at once, by field (the page shows each next to its field). */
export function fieldErrors(error: z.ZodError): Record<string, string> {
  const out: Record<string, string> = {};
  for (const issue of error.issues) {
    const field = String(issue.path[0] ?? '');
    if (field && !out[field]) out[field] = issue.message.startsWith('Invalid') ? 'Check this value.' : issue.message;
  }
  return out;
}
