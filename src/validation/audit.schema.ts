import { z } from 'zod';
import { AUDIT_ACTIONS } from '../audit/event.schema.js';

const blank = (v: unknown) => (v === '' ? undefined : v);
const day = z.preprocess(blank, z.string().regex(/^\d{4}-\d{2}-\d{2}$/, 'Dates are YYYY-MM-DD.').refine((s) => { const d = new Date(`${s}T00:00:00Z`); return !Number.isNaN(d.getTime()) && d.toISOString().slice(0, 10) === s; }, 'That date does not exist.').optional());

/** The audit search form (query string or export form body). Every field optional; blanks ignored. */
export const auditFilterForm = z
  .object({
    actor: z.preprocess(blank, z.uuid('Choose a user from the list.').optional()),
    patient: z.preprocess(blank, z.uuid('A patient id looks like 8-4-4-4-12 hexadecimal characters.').optional()),
    action: z.preprocess(blank, z.enum(AUDIT_ACTIONS, 'Choose an action from the list.').optional()),
    outcome: z.preprocess(blank, z.enum(['allowed', 'denied', 'failed'], 'Choose an outcome from the list.').optional()),
    from: day,
    to: day,
    before: z.preprocess(blank, z.string().regex(/^\d{1,19}$/).optional()),
  })
  .refine((f) => !f.from || !f.to || f.from <= f.to, { message: 'The start date is after the end date.', path: ['from'] });

export type AuditFilterForm = z.output<typeof auditFilterForm>;
