import { z } from 'zod';
import { CANCEL_REASONS } from '../queries/schedule.queries.js';
import { form } from './text.js';

const day = z
  .string()
  .trim()
  .regex(/^\d{4}-\d{2}-\d{2}$/, 'Enter the day as YYYY-MM-DD.')
  .refine((v) => !Number.isNaN(Date.parse(`${v}T00:00:00Z`)) && new Date(`${v}T00:00:00Z`).toISOString().startsWith(v), 'Enter the day as YYYY-MM-DD.');
const time = z.string().trim().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'Enter the time as hh:mm (24-hour), such as 09:30.');
const minutes = z
  .string()
  .trim()
  .default('')
  .refine((v) => v === '' || (/^\d{1,3}$/.test(v) && Number(v) >= 5 && Number(v) <= 480 && Number(v) % 5 === 0), 'The length is 5 to 480 minutes, in steps of 5 (or empty for the kind’s usual length).')
  .transform((v) => (v === '' ? null : Number(v)));

export const bookingForm = form({
  locationId: z.uuid('Choose the location.'),
  chairId: z.uuid('Choose the chair.'),
  providerId: z.uuid('Choose the provider.'),
  kindId: z.uuid('Choose the kind of appointment.'),
  day,
  time,
  minutes,
  note: z.string().trim().max(500, 'The note is at most 500 characters.').default(''),
});

export const moveForm = form({
  chairId: z.uuid('Choose the chair.'),
  providerId: z.uuid('Choose the provider.'),
  day,
  time,
  minutes,
});

export const statusForm = form({ status: z.enum(['confirmed', 'arrived', 'in_chair', 'completed', 'no_show'], 'Choose the status.') });
export const cancelForm = form({ reason: z.enum(CANCEL_REASONS, 'Choose why it is cancelled.') });

/** The day view's query: a location and a day (ids and dates, never PHI). */
export const dayQuery = z.object({
  location: z.uuid().optional().catch(undefined),
  day: day.optional().catch(undefined),
});
