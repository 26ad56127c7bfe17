import { z } from 'zod';
import { CHANNEL_RULES, RECEIVED_VIA, REQUEST_KINDS, REQUEST_OUTCOMES } from '../queries/rights.queries.js';
import { DISCLOSURE_PURPOSES } from '../services/rights/rights.service.js';
import { form } from './text.js';

const isoDay = (message: string) =>
  z
    .string()
    .regex(/^\d{4}-\d{2}-\d{2}$/, message)
    .refine((v) => !Number.isNaN(Date.parse(`${v}T00:00:00Z`)) && new Date(`${v}T00:00:00Z`).toISOString().startsWith(v), message)
    .transform((v) => new Date(`${v}T12:00:00Z`));
const text = (max: number, message: string) => z.string().trim().max(max, message);

export const requestForm = form({
  kind: z.enum(REQUEST_KINDS, 'Choose what the patient asked for.'),
  receivedVia: z.enum(RECEIVED_VIA.filter((v) => v !== 'patient_link') as ['phone', 'paper', 'in_person', 'email'], 'Choose how the request reached you.'),
  receivedAt: isoDay('Enter the day the request was received.'),
  details: text(4000, 'At most 4,000 characters.').default(''),
});

export const extendForm = form({
  reason: text(2000, 'At most 2,000 characters.').min(5, 'Write the reason for the delay: the patient receives it in writing.'),
  noticeAt: isoDay('Enter the day the patient was told.'),
});

export const closeForm = form({
  status: z.enum(REQUEST_OUTCOMES, 'Choose how the request ended.'),
  note: text(4000, 'At most 4,000 characters.').default(''),
  fee: z
    .string()
    .trim()
    .regex(/^(\d{1,5}(\.\d{2})?)?$/, 'Enter the fee in dollars and cents, such as 12.50 (or leave it empty).')
    .default('')
    .transform((v) => (v === '' ? null : Math.round(Number(v) * 100))),
});

export const disclosureForm = form({
  disclosedAt: isoDay('Enter the day of the disclosure.'),
  purpose: z.enum(DISCLOSURE_PURPOSES, 'Choose the purpose.'),
  recipientName: text(200, 'At most 200 characters.').min(2, 'Enter who received it.'),
  recipientAddress: text(400, 'At most 400 characters.').default(''),
  description: text(2000, 'At most 2,000 characters.').min(3, 'Describe what was disclosed.'),
});

export const accountingQuery = z.object({
  from: z.string().regex(/^\d{4}-\d{2}-\d{2}$/).optional().catch(undefined),
  to: z.string().regex(/^\d{4}-\d{2}-\d{2}$/).optional().catch(undefined),
  all: z.literal('1').optional().catch(undefined),
  format: z.enum(['csv']).optional().catch(undefined),
});

export const restrictionForm = form({
  kind: z.enum(['restriction', 'confidential_communication'], 'Choose what the patient asked for.'),
  decision: z.enum(['agreed', 'refused'], 'Choose the practice’s answer.'),
  channel: z.preprocess((v) => (v === '' ? undefined : v), z.enum(CHANNEL_RULES, 'Choose how the patient wants to be contacted.').optional()),
  description: text(2000, 'At most 2,000 characters.').min(3, 'Describe what the patient asked.'),
  refusalReason: text(2000, 'At most 2,000 characters.').default(''),
});

export const amendmentRequestForm = form({
  target: z.string().regex(/^(demographics|clinical_note|treatment_plan):[0-9a-f-]{36}$/, 'Choose which part of the record.'),
  change: text(4000, 'At most 4,000 characters.').min(3, 'Write what the patient wants changed.'),
  receivedVia: z.enum(['phone', 'paper', 'in_person', 'email'], 'Choose how the request reached you.'),
  receivedAt: isoDay('Enter the day the request was received.'),
});

/** The patient's own request for a correction, through their link. */
export const linkAmendmentForm = form({
  target: z
    .string()
    .regex(/^(demographics|clinical_note|treatment_plan):[0-9a-f-]{36}$/, 'Choose which part of your record is wrong.')
    .transform((v) => {
      const [targetType, targetId] = v.split(':') as ['demographics' | 'clinical_note' | 'treatment_plan', string];
      return { targetType, targetId };
    }),
  change: text(4000, 'At most 4,000 characters.').min(3, 'Write what is wrong and what it should say.'),
});

export const amendmentDecisionForm = form({
  decision: z.enum(['accepted', 'denied'], 'Choose accept or deny.'),
  text: text(4000, 'At most 4,000 characters.').default(''),
});

export const disagreementForm = form({
  statement: text(8000, 'At most 8,000 characters.').min(3, 'Write the patient’s statement as they gave it.'),
});
