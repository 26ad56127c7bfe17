import { z } from 'zod';
import { NUL_MESSAGE } from '../validation/text.js';
import type { DateFormat } from '../presenters/format.js';
import { readDate } from '../validation/dates.js';

/**
 * Intake and consent form definitions: a title, the notice text the patient reads, and fields with
 * validation. A definition holds no patient data; it is stored as one immutable version per edit,
 * and every submission names the version it answered.
 *
 * Staff edit the fields as lines of text (one field per line):
 *     Label | type | required or optional | option, option, …
 * with type one of text, long text, date, yes/no, checkbox, choice. `parseFieldLines` turns the
 * lines into fields or says which line is wrong; `fieldLines` writes them back.
 */
export const FIELD_TYPES = ['text', 'textarea', 'date', 'yes_no', 'checkbox', 'choice'] as const;
export type FieldType = (typeof FIELD_TYPES)[number];

const TYPE_WORDS: Record<string, FieldType> = { text: 'text', 'long text': 'textarea', textarea: 'textarea', date: 'date', 'yes/no': 'yes_no', yes_no: 'yes_no', checkbox: 'checkbox', choice: 'choice' };
const TYPE_NAMES: Record<FieldType, string> = { text: 'text', textarea: 'long text', date: 'date', yes_no: 'yes/no', checkbox: 'checkbox', choice: 'choice' };

const field = z.strictObject({
  name: z.string().regex(/^[a-z][a-z0-9_]{0,39}$/),
  label: z.string().min(1).max(200),
  type: z.enum(FIELD_TYPES),
  required: z.boolean(),
  options: z.array(z.string().min(1).max(80)).max(20).optional(),
});
export type FormField = z.infer<typeof field>;

export const formDefinition = z.strictObject({
  title: z.string().trim().min(2, 'Give the form a title.').max(120, 'The title is too long.'),
  notice: z.string().max(20_000, 'The notice text is too long (20,000 characters at most).'),
  fields: z.array(field).min(1, 'Add at least one field.').max(60, 'A form has at most 60 fields.'),
});
export type FormDefinition = z.infer<typeof formDefinition>;

/** A field name from its label: lowercase words joined by underscores, unique within the form. */
function nameFor(label: string, taken: Set<string>): string {
  const base = (label.toLowerCase().replace(/[^a-z0-9]+/g, '_').replace(/^_+|_+$/g, '').replace(/^(\d)/, 'f_$1') || 'field').slice(0, 36);
  let name = /^[a-z]/.test(base) ? base : `f_${base}`.slice(0, 36);
  for (let i = 2; taken.has(name); i++) name = `${base}_${i}`;
  taken.add(name);
  return name;
}

export function parseFieldLines(text: string): { ok: true; fields: FormField[] } | { ok: false; error: string } {
  const lines = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l.length > 0);
  if (lines.length === 0) return { ok: false, error: 'Add at least one field.' };
  if (lines.length > 60) return { ok: false, error: 'A form has at most 60 fields.' };
  const taken = new Set<string>();
  const fields: FormField[] = [];
  for (const [i, line] of lines.entries()) {
    const where = `Line ${i + 1}`;
    const [label = '', typeWord = 'text', req = 'optional', opts = ''] = line.split('|').map((p) => p.trim());
    if (label.length === 0 || label.length > 200) return { ok: false, error: `${where}: the label must be 1–200 characters.` };
    const type = TYPE_WORDS[typeWord.toLowerCase()];
    if (!type) return { ok: false, error: `${where}: “${typeWord.slice(0, 20)}” is not a field type. Use text, long text, date, yes/no, checkbox or choice.` };
    const r = req.toLowerCase();
    if (r !== 'required' && r !== 'optional') return { ok: false, error: `${where}: say “required” or “optional”.` };
    const options = opts.split(',').map((o) => o.trim()).filter((o) => o.length > 0);
    if (type === 'choice' && (options.length < 2 || options.length > 20 || options.some((o) => o.length > 80))) return { ok: false, error: `${where}: a choice needs 2–20 options (each up to 80 characters), separated by commas.` };
    if (type !== 'choice' && options.length > 0) return { ok: false, error: `${where}: only a choice field has options.` };
    fields.push({ name: nameFor(label, taken), label, type, required: r === 'required', ...(type === 'choice' ? { options } : {}) });
  }
  return { ok: true, fields };
}

export function fieldLines(fields: readonly FormField[]): string {
  return fields.map((f) => [f.label, TYPE_NAMES[f.type], f.required ? 'required' : 'optional', ...(f.options ? [f.options.join(', ')] : [])].join(' | ')).join('\n');
}

export type Answers = Record<string, string | boolean | null>;

/**
 * Checks a patient's answers against a definition: every required field answered, dates real,
 * choices among the options, lengths bounded. Unknown keys are ignored (only defined fields are kept).
 */
export function checkAnswers(def: FormDefinition, body: Record<string, unknown>, dateFormat: DateFormat = 'MM/DD/YYYY'): { ok: true; answers: Answers } | { ok: false; errors: Record<string, string> } {
  const answers: Answers = {};
  const errors: Record<string, string> = {};
  for (const f of def.fields) {
    const raw = body[`f_${f.name}`];
    const value = typeof raw === 'string' ? raw.trim() : '';
    if (Array.isArray(raw)) {
      errors[f.name] = 'Answer once.';
      continue;
    }
    if (f.type === 'checkbox') {
      const checked = value === 'on' || value === 'yes';
      if (f.required && !checked) errors[f.name] = 'Tick this box to continue.';
      answers[f.name] = checked;
      continue;
    }
    if (value === '') {
      if (f.required) errors[f.name] = 'This is required.';
      answers[f.name] = null;
      continue;
    }
    if (value.includes('\u0000')) {
      errors[f.name] = NUL_MESSAGE;
      continue;
    }
    const max = f.type === 'textarea' ? 4000 : 500;
    if (value.length > max) {
      errors[f.name] = `At most ${max} characters.`;
      continue;
    }
    if (f.type === 'date') {
      const read = readDate(value, dateFormat);
      if (!read.ok) errors[f.name] = read.error;
      else answers[f.name] = read.iso;
    } else if (f.type === 'yes_no') {
      if (value !== 'yes' && value !== 'no') errors[f.name] = 'Choose yes or no.';
      else answers[f.name] = value;
    } else if (f.type === 'choice') {
      if (!f.options?.includes(value)) errors[f.name] = 'Choose one of the options.';
      else answers[f.name] = value;
    } else {
      answers[f.name] = value;
    }
  }
  return Object.keys(errors).length > 0 ? { ok: false, errors } : { ok: true, answers };
}

/** The four forms every practice starts with (editable; a new version per edit). */
export const DEFAULT_FORMS: readonly { key: string; definition: FormDefinition }[] = [
  {
    key: 'medical_history',
    definition: {
      title: 'Medical history',
      notice: 'Please answer as completely as you can. Your dentist uses this to treat you safely. Your answers are kept confidential.',
      fields: [
        { name: 'physician', label: 'Your physician’s name and phone', type: 'text', required: false },
        { name: 'medications', label: 'Medications you take (name and dose)', type: 'textarea', required: false },
        { name: 'allergies', label: 'Allergies (medicines, latex, foods)', type: 'textarea', required: false },
        { name: 'heart_condition', label: 'Do you have a heart condition, artificial valve or pacemaker?', type: 'yes_no', required: true },
        { name: 'blood_thinners', label: 'Do you take blood thinners?', type: 'yes_no', required: true },
        { name: 'diabetes', label: 'Do you have diabetes?', type: 'yes_no', required: true },
        { name: 'pregnant', label: 'Are you pregnant or nursing?', type: 'choice', required: false, options: ['No', 'Pregnant', 'Nursing', 'Not applicable'] },
        { name: 'last_visit', label: 'Date of your last dental visit', type: 'date', required: false },
        { name: 'other', label: 'Anything else we should know', type: 'textarea', required: false },
      ],
    },
  },
  {
    key: 'hipaa_acknowledgment',
    definition: {
      title: 'Acknowledgment of the Notice of Privacy Practices',
      notice: 'Our Notice of Privacy Practices describes how we may use and disclose your health information and how you can get access to it. You may ask the front desk for a paper copy at any time.',
      fields: [{ name: 'received_notice', label: 'I have received or been offered the practice’s Notice of Privacy Practices.', type: 'checkbox', required: true }],
    },
  },
  {
    key: 'consent_to_treat',
    definition: {
      title: 'Consent to treatment',
      notice: 'I consent to the dental examination, radiographs and treatment my dentist recommends and I agree to. I understand that I may ask questions and may withdraw my consent at any time before treatment.',
      fields: [{ name: 'consent', label: 'I consent to examination and treatment as described above.', type: 'checkbox', required: true }],
    },
  },
  {
    key: 'financial_policy',
    definition: {
      title: 'Financial policy',
      notice: 'Payment is due when services are provided. Insurance amounts are estimates; you are responsible for any portion your insurance does not pay. Appointments missed without 24 hours’ notice may be charged.',
      fields: [
        { name: 'agree', label: 'I have read and agree to the financial policy.', type: 'checkbox', required: true },
        { name: 'billing_contact', label: 'Who is responsible for the bill?', type: 'choice', required: true, options: ['Myself', 'Parent or guardian', 'Other'] },
      ],
    },
  },
];
