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
