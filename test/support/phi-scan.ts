import type { Knex } from 'knex';

/**
 * The PHI scan: every fake patient value a test creates is remembered here (`rememberPhi`), every
 * log line an app writes in a test is collected (`collectLogs`), every email and text a test
 * transport sends (`collectMessages`), and before each test database is dropped, its audit rows,
 * the outbox's plain columns, the collected log lines (which carry every request path) and the
 * messages are searched for those values. A hit fails the file's "after all" hook with the table and column (or log
 * field) where it was found — never with the value itself.
 */
const markers = new Set<string>();
const logs: Record<string, unknown>[][] = [];
const messages: { subject?: string; text: string }[][] = [];

/** Values shorter than this are too likely to occur by chance in ids and timings. */
const MIN_LENGTH = 6;

export function rememberPhi(...values: (string | null | undefined)[]): void {
  for (const v of values) if (v && v.length >= MIN_LENGTH) markers.add(v.toLowerCase());
}

/** For the scan's own test only. */
export function forgetPhi(value: string): void {
  markers.delete(value.toLowerCase());
}

export function collectLogs(lines: Record<string, unknown>[]): void {
  logs.push(lines);
}

/** Every email and text a test transport delivers (test/support/mail.ts) is scanned too. */
export function collectMessages(sent: { subject?: string; text: string }[]): void {
  messages.push(sent);
}

function found(text: string): boolean {
  const lower = text.toLowerCase();
  for (const m of markers) if (lower.includes(m)) return true;
  return false;
}

/** Where PHI appears (audit columns, log fields), or [] — the values themselves are not reported. */
export async function scanForPhi(owner: Knex): Promise<string[]> {
  const problems: string[] = [];
  if (markers.size === 0) return problems;
  const hasAudit = await owner.schema.hasTable('audit_events');
  if (hasAudit) {
    const rows = await owner('audit_events').select('id', 'actor_id', 'action', 'resource_type', 'resource_id', 'reason', 'request_id', 'details');
    for (const row of rows as Record<string, unknown>[]) {
      for (const [column, value] of Object.entries(row)) {
        if (value !== null && found(typeof value === 'string' ? value : JSON.stringify(value))) problems.push(`audit_events.${column} (event ${String(row.id)})`);
      }
    }
  }
  for (const lines of logs) {
    for (const line of lines) {
      for (const [field, value] of Object.entries(line)) {
        if (value !== null && value !== undefined && found(typeof value === 'string' ? value : JSON.stringify(value))) problems.push(`log field "${field}" (${String(line.msg ?? '')})`);
      }
    }
  }
  for (const list of messages) {
    for (const m of list) if (found(`${m.subject ?? ''}\n${m.text}`)) problems.push(`an outgoing message (${(m.subject ?? 'text').slice(0, 40)})`);
  }
  if (await owner.schema.hasTable('outbox_messages')) {
    for (const row of (await owner('outbox_messages').select('template', 'last_error')) as Record<string, unknown>[]) {
      for (const [column, value] of Object.entries(row)) if (typeof value === 'string' && found(value)) problems.push(`outbox_messages.${column}`);
    }
  }
  logs.length = 0;
  messages.length = 0;
  return problems;
}
