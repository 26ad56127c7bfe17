import { z } from 'zod';
import { DATE_FORMATS, isTimeZone } from '../presenters/format.js';
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
  accessReport: z.enum(['names', 'roles'], 'Choose what patients see of the staff who looked at their record.'),
  baNoticeHours: z
    .string()
    .trim()
    .default('')
    .refine((v) => v === '' || (/^\d{1,4}$/.test(v) && Number(v) >= 1 && Number(v) <= 1440), 'Enter 1 to 1,440 hours, or leave it empty for the rule’s 60 days.')
    .transform((v) => (v === '' ? null : Number(v))),
});

export type SecuritySettingsFields = keyof z.input<typeof securitySettingsForm>;

export { fieldErrors } from './text.js';

/** The practice details form: phone, time zone, date format (the logo is its own upload form). */
export const practiceDetailsForm = form({
  phone: z
    .string()
    .trim()
    .max(40, 'The phone number is at most 40 characters.')
    .refine((v) => v === '' || /^[\d\s()+.-]{7,40}$/.test(v), 'Enter the phone number with digits, spaces, ( ) + . or - only.'),
  timeZone: z.string().trim().refine(isTimeZone, 'Choose the time zone from the list.'),
  dateFormat: z.enum(DATE_FORMATS, 'Choose how dates are written.'),
});
