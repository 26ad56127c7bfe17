import { z } from 'zod';

/**
 * A NUL byte (U+0000) has no place in anything a person types, and PostgreSQL cannot store it in
 * text or JSON (it answered 500). Every form schema is built with `form()`, which refuses it in any
 * field with this message on that field — one refinement shared by all the schemas.
 */
export const NUL_MESSAGE = 'This contains an invisible control character that cannot be saved. Retype it, or paste it as plain text.';

function nulPaths(value: unknown, path: (string | number)[], out: (string | number)[][]): void {
  if (typeof value === 'string') {
    if (value.includes('\u0000')) out.push(path);
  } else if (Array.isArray(value)) {
    value.forEach((v, i) => nulPaths(v, [...path, i], out));
  } else if (value && typeof value === 'object' && !Buffer.isBuffer(value)) {
    for (const [k, v] of Object.entries(value)) nulPaths(v, [...path, k], out);
  }
}

/** Whether anything in a parsed body holds a NUL byte (the request-level safety net uses it too). */
export function containsNul(value: unknown): boolean {
  const out: (string | number)[][] = [];
  nulPaths(value, [], out);
  return out.length > 0;
}

/** A form's schema: z.object(shape), refusing a NUL byte in any field (reported on that field). */
export function form<S extends z.ZodRawShape>(shape: S) {
  return z.object(shape).superRefine((value, ctx) => {
    const found: (string | number)[][] = [];
    nulPaths(value, [], found);
    for (const path of found) ctx.addIssue({ code: 'custom', path, message: NUL_MESSAGE });
  });
}

/**
 * Every problem of a form at once, by field (the page shows each next to its field, linked by
 * aria-describedby). zod's own "Invalid …" wording becomes "Check this value."
 */
export function fieldErrors(error: z.ZodError): Record<string, string> {
  const out: Record<string, string> = {};
  for (const issue of error.issues) {
    const field = String(issue.path[0] ?? '');
    if (field && !out[field]) out[field] = issue.message.startsWith('Invalid') ? 'Check this value.' : issue.message;
  }
  return out;
}

/** What a re-rendered form shows: each field's error beside it, and the summary above. */
export interface FormProblems {
  errors: Record<string, string>;
  error: string;
}

/** A failed parse: every field's first error, with the summary. */
export function formProblems(error: z.ZodError): FormProblems {
  const errors = fieldErrors(error);
  return Object.keys(errors).length > 0 ? { errors, error: errorSummary(errors) } : { errors, error: 'Check the form and try again.' };
}

/** A service's refusal: beside its field when it names one, else above the form. */
export function resultProblems(result: { error: string; field?: string }): FormProblems {
  if (!result.field) return { errors: {}, error: result.error };
  const errors = { [result.field]: result.error };
  return { errors, error: errorSummary(errors) };
}

/** The summary above a form with errors: how many fields need attention. */
export function errorSummary(errors: Record<string, string>): string {
  const n = Object.keys(errors).length;
  return n === 1 ? 'One field needs attention; nothing was saved.' : `${n} fields need attention; nothing was saved.`;
}

/** The first message of a failed parse, for a form with one error line. */
export function firstError(error: z.ZodError): string {
  return error.issues[0]?.message && !error.issues[0].message.startsWith('Invalid') ? error.issues[0].message : 'Check the form and try again.';
}
