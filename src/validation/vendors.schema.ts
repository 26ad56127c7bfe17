import { z } from 'zod';
import { INTEGRATIONS } from '../compliance/coverage.js';
import { INCIDENT_KINDS, INCIDENT_SYSTEMS } from '../queries/incidents.queries.js';
import { form } from './text.js';

const day = (message: string) =>
  z
    .string()
    .trim()
    .default('')
    .refine((v) => v === '' || (/^\d{4}-\d{2}-\d{2}$/.test(v) && new Date(`${v}T00:00:00Z`).toISOString().startsWith(v)), message)
    .transform((v) => (v === '' ? null : v));
const requiredDay = (message: string) =>
  z
    .string()
    .trim()
    .regex(/^\d{4}-\d{2}-\d{2}$/, message)
    .refine((v) => !Number.isNaN(Date.parse(`${v}T00:00:00Z`)) && new Date(`${v}T00:00:00Z`).toISOString().startsWith(v), message);
const text = (max: number, message: string) => z.string().trim().max(max, message);
const many = <T extends z.ZodType>(item: T) => z.union([item, z.array(item).max(20)]).optional().transform((v) => (v === undefined ? [] : Array.isArray(v) ? v : [v]));

/** A registry entry (practice or installation). */
export const vendorForm = form({
  name: text(200, 'At most 200 characters.').min(1, 'Enter the vendor’s name.'),
  service: text(200, 'At most 200 characters.').min(1, 'Say what they do for you (hosting, lab work, IT support…).'),
  integration: z.preprocess((v) => (v === '' ? undefined : v), z.enum(INTEGRATIONS, 'Choose the integration from the list.').optional()),
  dataSeen: z.enum(['phi', 'messages_no_phi', 'none'], 'Choose what data they see.'),
  agreement: z.enum(['none', 'requested', 'executed', 'expired', 'not_required'], 'Choose the agreement’s status.'),
  signedOn: day('Enter the day as YYYY-MM-DD.'),
  expiresOn: day('Enter the day as YYYY-MM-DD.'),
  reviewOn: day('Enter the day as YYYY-MM-DD.'),
  notes: text(4000, 'At most 4,000 characters.').default(''),
  listed: z.preprocess((v) => v === 'yes', z.boolean()),
});

const clock = z.string().trim().regex(/^(\d{2}:\d{2})?$/, 'Enter the time as hh:mm, or leave it empty.').default('');

export const incidentForm = form({
  kind: z.enum(INCIDENT_KINDS, 'Choose the kind of incident.'),
  discoveredOn: requiredDay('Enter the day it was discovered (YYYY-MM-DD).'),
  discoveredTime: clock,
  occurredOn: day('Enter the day as YYYY-MM-DD, or leave it empty.'),
  vendorId: z.preprocess((v) => (v === '' ? undefined : v), z.uuid('Choose the vendor from the list.').optional()),
  systems: many(z.enum(INCIDENT_SYSTEMS, 'Choose the systems from the list.')),
  summary: text(4000, 'At most 4,000 characters.').min(5, 'Describe what happened (no patient names: add patients below).'),
  reportedBy: text(200, 'At most 200 characters.').default(''),
});

export const auditQueryForm = form({
  userId: z.uuid('Choose the account.'),
  fromDay: requiredDay('Enter the start day (YYYY-MM-DD).'),
  fromTime: clock,
  toDay: requiredDay('Enter the end day (YYYY-MM-DD).'),
  toTime: clock,
});

export const assessmentForm = form({
  nature: text(4000, 'At most 4,000 characters.').min(3, 'Describe the PHI involved: what kinds, how much, how identifiable.'),
  recipient: text(4000, 'At most 4,000 characters.').min(3, 'Say who used or received it.'),
  acquired: text(4000, 'At most 4,000 characters.').min(3, 'Say whether it was actually acquired or viewed.'),
  mitigation: text(4000, 'At most 4,000 characters.').min(3, 'Say what was done to mitigate the risk.'),
  advice: text(4000, 'At most 4,000 characters.').default(''),
  outcome: z.enum(['not_breach', 'breach'], 'Choose the outcome of the assessment.'),
});

export const incidentEventForm = form({
  kind: z.enum(['action', 'containment', 'notice'], 'Choose what kind of step.'),
  on: requiredDay('Enter the day (YYYY-MM-DD).'),
  body: text(4000, 'At most 4,000 characters.').min(3, 'Describe the step.'),
});

export const noticeDoneForm = form({
  doneOn: requiredDay('Enter the day the notice was given (YYYY-MM-DD).'),
  evidence: text(2000, 'At most 2,000 characters.').min(3, 'Say how it was given and where the proof is (mailing list, email, portal reference).'),
});

export const patientChangeForm = form({
  patientId: z.uuid('Choose the patient.'),
  change: z.enum(['add', 'remove'], 'Choose add or remove.'),
});
