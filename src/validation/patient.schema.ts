import { z } from 'zod';
import { form } from './text.js';
import { normalizeForIndex } from '../crypto/blind-index.js';
import type { DateFormat } from '../presenters/format.js';
import { readDate } from './dates.js';

const text = (max: number, label: string) => z.string().trim().max(max, `${label} is too long (${max} characters at most).`);
const optionalText = (max: number, label: string) => z.preprocess((v) => v ?? '', text(max, label)).transform((v) => (v === '' ? null : v));

export const SEXES = ['female', 'male', 'other', 'unknown'] as const;
export const CONTACT_METHODS = ['phone', 'sms', 'email', 'mail'] as const;
export const EDITABLE_STATUSES = ['active', 'inactive', 'deceased'] as const;

/**
 * The patient form. Dates of birth in any of the documented formats become ISO dates; phones keep
 * what was typed but must have 7–15 digits; every optional field may be blank.
 */
/** TCPA: whether and how the patient agreed to text messages (recorded with the time it was given). */
export const SMS_CONSENT_CHOICES = ['none', 'written', 'verbal', 'online'] as const;

/** A date of birth typed in the practice's format (validation/dates.ts): a real date, not in the future. */
const dateOfBirth = (format: DateFormat) =>
  z.string('Enter the date of birth.').transform((v, ctx) => {
    if (v.trim() === '') {
      ctx.addIssue({ code: 'custom', message: `Enter the date of birth (${format}).` });
      return z.NEVER;
    }
    const read = readDate(v, format, 'the date of birth');
    if (!read.ok) {
      ctx.addIssue({ code: 'custom', message: read.error });
      return z.NEVER;
    }
    if (read.iso > new Date().toISOString().slice(0, 10)) {
      ctx.addIssue({ code: 'custom', message: 'A date of birth cannot be in the future. Check the year.' });
      return z.NEVER;
    }
    return read.iso;
  });

const patientShape = (format: DateFormat) => ({
  givenName: text(100, 'The first name').min(1, 'Enter the first name.'),
  familyName: text(100, 'The last name').min(1, 'Enter the last name.'),
  dateOfBirth: dateOfBirth(format),
  sex: z.enum(SEXES, 'Choose a sex from the list.'),
  phone: optionalText(40, 'The phone number').refine((v) => v === null || normalizeForIndex('phone', v) !== undefined, 'Enter a phone number with 7 to 15 digits.'),
  email: optionalText(254, 'The email address').refine((v) => v === null || normalizeForIndex('email', v) !== undefined, 'Enter a valid email address.'),
  preferredContact: z.enum(CONTACT_METHODS, 'Choose how the patient prefers to be contacted.'),
  addressLine1: optionalText(200, 'The address'),
  addressLine2: optionalText(200, 'The address'),
  city: optionalText(100, 'The city'),
  region: optionalText(100, 'The state'),
  postalCode: optionalText(20, 'The ZIP code'),
  insuranceCarrier: optionalText(120, 'The insurance carrier'),
  insuranceMemberId: optionalText(60, 'The member id'),
  emergencyName: optionalText(120, 'The emergency contact'),
  emergencyPhone: optionalText(40, 'The emergency phone').refine((v) => v === null || normalizeForIndex('phone', v) !== undefined, 'Enter an emergency phone number with 7 to 15 digits.'),
  emergencyRelationship: optionalText(60, 'The relationship'),
  locationId: z.uuid('Choose a location.'),
  status: z.enum(EDITABLE_STATUSES, 'Choose a status from the list.').default('active'),
  smsConsent: z.enum(SMS_CONSENT_CHOICES, 'Choose whether the patient agreed to text messages.').default('none'),
  confirmDuplicate: z.literal('yes').optional(),
});

/** The patient form of a practice that writes dates as `format`. */
export const patientFormFor = (format: DateFormat) => form(patientShape(format));
export type PatientForm = z.output<ReturnType<typeof patientFormFor>>;

/** Search: one box; its shape decides what it is (email, date of birth, phone, or last name). */
export const patientSearchForm = form({ q: z.string().trim().min(2, 'Type at least two characters.').max(254, 'That is too long to be a name, date, phone or email.') });

export const BREAK_GLASS_REASONS = ['emergency', 'continuity_of_care', 'patient_request', 'other'] as const;

export const breakGlassForm = form({
  reasonCode: z.enum(BREAK_GLASS_REASONS, 'Choose why you need access.'),
  justification: z.string().trim().min(10, 'Write at least a sentence (10 characters or more) saying why.').max(1000, 'Keep the reason under 1,000 characters.'),
});
