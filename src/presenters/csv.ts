/**
 * One CSV cell, quoted; a value a spreadsheet would run as a formula (=, +, -, @, tab, CR first) is
 * prefixed with an apostrophe (CSV injection, OWASP).
 */
export function csvCell(value: unknown): string {
  let s = value === null || value === undefined ? '' : value instanceof Date ? value.toISOString() : typeof value === 'object' ? JSON.stringify(value) : String(value);
  if (/^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return `"${s.replace(/"/g, '""')}"`;
}

/** A CSV document (CRLF lines) from a header and rows. */
export function csvDocument(header: readonly string[], rows: readonly (readonly unknown[])[]): string {
  return `${[header, ...rows].map((r) => r.map(csvCell).join(',')).join('\r\n')}\r\n`;
}
