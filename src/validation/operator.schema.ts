import { z } from 'zod';
import { form } from './text.js';
import { MAX_GRANT_HOURS } from '../services/operators/operators.service.js';

export const operatorSignInForm = form({
  email: z.string().trim().min(3).max(254),
  password: z.string().min(1).max(1024),
  code: z.string().trim().regex(/^\d{6}$/),
});

const email = z.string().trim().toLowerCase().max(254).pipe(z.email('Enter a valid email address for the owner.'));

export const newPracticeForm = form({
  name: z.string().trim().min(1, 'Enter the practice’s name.').max(200, 'The name is too long (200 characters at most).'),
  slug: z
    .string()
    .trim()
    .toLowerCase()
    .regex(/^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$/, 'The web address part is 1–40 lowercase letters, digits and dashes, not starting or ending with a dash.')
    .refine((v) => v !== 'enamel-installation', 'That address is reserved; choose another.'),
  locationName: z.string().trim().min(1, 'Name the first location (e.g. Main Office).').max(120),
  phone: z.string().trim().min(7, 'Enter the practice’s phone number.').max(40),
  ownerName: z.string().trim().min(1, 'Enter the owner’s name.').max(120),
  ownerEmail: email,
});

const intIn = (min: number, max: number, message: string) => z.coerce.number(message).int(message).min(min, message).max(max, message);

/** The retention settings an operator keeps for a practice (the security settings are the owner's). */
export const practiceSettingsForm = form({
  patientPurgeGraceDays: intIn(1, 365, 'Deleted patients are purged after 1 to 365 days.'),
  inactiveAccountDays: intIn(30, 365, 'Unused accounts are disabled after 30 to 365 days.'),
  auditRetentionYears: intIn(6, 100, 'Audit events are kept 6 years at least (HIPAA), at most 100.'),
});

export const operatorStepUpForm = form({
  password: z.string().min(1).max(1024),
  code: z.string().trim().regex(/^\d{6}$/),
  next: z.string().max(300).optional(),
});

export const operatorDecisionForm = form({ decision: z.enum(['keep', 'revoke'], 'Choose keep or revoke.') });
export const signOffNameForm = form({ name: z.string().trim().min(2, 'Type your full name to sign the review off.').max(120, 'The name is too long.') });

export const terminateForm = form({
  tailDays: z.coerce.number('Enter the tail in days (30–60).').int('Enter whole days.').min(30, 'The tail is at least 30 days.').max(60, 'The tail is at most 60 days.'),
  confirmSlug: z.string().trim().max(40),
});

export const practiceStatusForm = form({ status: z.enum(['active', 'suspended'], 'Choose active or suspended.') });

export const operatorGrantForm = form({
  operatorEmail: z.string().trim().toLowerCase().max(254).pipe(z.email('Enter the operator’s email address.')),
  caseReference: z.string().trim().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,39}$/, 'Enter the support case number (letters, digits, dots and dashes; no names).'),
  hours: intIn(1, MAX_GRANT_HOURS, `Access lasts 1 to ${MAX_GRANT_HOURS} hours.`),
});
