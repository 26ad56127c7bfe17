import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger };

/**
 * Paths that could ever carry PHI or secrets. Request bodies, query strings, cookies and
 * authorization headers are never logged; these censor them if a caller slips one in anyway.
 */
export const REDACT_PATHS = [
  'body',
  '*.body',
  'query',
  '*.query',
  'password',
  '*.password',
  'headers.cookie',
  '*.headers.cookie',
  'headers.authorization',
  '*.headers.authorization',
  'cookie',
  'authorization',
  'detail',
  '*.detail',
  'phi',
  '*.phi',
];

/** Creates the one JSON logger. SECURITY: redaction is always on; there is no debug switch that turns it off. */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  const options = {
    level,
    base: { service: 'enamel' },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    serializers: { err: serializeError },
    formatters: { level: (label: string) => ({ level: label }) },
  };
  return destination ? pino(options, destination) : pino(options);
}

// eslint-disable-next-line no-control-regex
const CONTROL_CHARS = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g;

/**
 * SECURITY: escapes control characters in a client-supplied string before it is logged, so a
 * request cannot forge log lines or terminal escapes even in a non-JSON log viewer.
 */
export function escapeControl(value: string, maxLength = 512): string {
  const clipped = value.length > maxLength ? `${value.slice(0, maxLength)}…` : value;
  return clipped.replace(CONTROL_CHARS, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

interface PgLikeError extends Error {
  code?: string;
  constraint?: string;
  table?: string;
  column?: string;
  routine?: string;
  severity?: string;
}

/**
 * SECURITY: PostgreSQL error messages and details can quote the values that failed
 * ("Key (email)=(…)", "invalid input syntax …: \"…\""), so for database errors only the code,
 * constraint, table, column and stack frames are logged, never the message or detail.
 */
export function serializeError(err: unknown): Record<string, unknown> {
  if (!(err instanceof Error)) return { type: typeof err };
  const e = err as PgLikeError;
  const frames = (e.stack ?? '').split('\n').slice(1, 12).map((l) => l.trim());
  const isDatabaseError = e.name === 'DatabaseError' || (typeof e.code === 'string' && /^[0-9A-Z]{5}$/.test(e.code) && 'routine' in e);
  if (isDatabaseError) {
    return {
      type: e.name,
      code: e.code,
      constraint: e.constraint,
      table: e.table,
      column: e.column,
      routine: e.routine,
      stack: frames,
    };
  }
  return { type: e.name, message: escapeControl(e.message), code: e.code, stack: frames };
}
