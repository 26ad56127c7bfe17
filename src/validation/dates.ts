import type { DateFormat } from '../presenters/format.js';

/**
 * Reads a date a person typed, in the practice's date format: with separators ("3/4/1980",
 * "03-04-1980"), as digits only ("03041980"), or as ISO 8601 ("1980-03-04", always accepted).
 * Refused, with the format to use: impossible dates (02/30), two-digit years (ambiguous: 1920 or
 * 2020?), and day/month orders a YYYY-MM-DD practice cannot tell apart. Returns the ISO date.
 */
export type DateReading = { ok: true; iso: string } | { ok: false; error: string };

function calendar(y: number, m: number, d: number): string | undefined {
  const date = new Date(Date.UTC(y, m - 1, d));
  if (date.getUTCFullYear() !== y || date.getUTCMonth() !== m - 1 || date.getUTCDate() !== d || y < 1850) return undefined;
  return date.toISOString().slice(0, 10);
}

export function readDate(raw: string, format: DateFormat, what = 'the date'): DateReading {
  const value = raw.normalize('NFKC').trim();
  const use = `Enter ${what} as ${format}`;
  const impossible: DateReading = { ok: false, error: `That date does not exist. ${use}.` };
  let m = /^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})$/.exec(value);
  if (m) return ((iso) => (iso ? { ok: true as const, iso } : impossible))(calendar(Number(m[1]), Number(m[2]), Number(m[3])));
  const dayFirst = format === 'DD/MM/YYYY';
  if ((m = /^(\d{1,2})[-/.](\d{1,2})[-/.](\d{4})$/.exec(value)) || (m = /^(\d{2})(\d{2})(\d{4})$/.exec(value))) {
    if (format === 'YYYY-MM-DD') return { ok: false, error: `${use} (year first), so the month and the day cannot be mixed up.` };
    const [a, b, y] = [Number(m[1]), Number(m[2]), Number(m[3])];
    const iso = dayFirst ? calendar(y, b, a) : calendar(y, a, b);
    if (iso) return { ok: true, iso };
    // CASE: "19800304" is year first even in a month-first practice (no month 19 exists).
    if (/^\d{8}$/.test(value)) {
      const alt = calendar(Number(value.slice(0, 4)), Number(value.slice(4, 6)), Number(value.slice(6, 8)));
      if (alt) return { ok: true, iso: alt };
    }
    return impossible;
  }
  if ((m = /^(\d{4})(\d{2})(\d{2})$/.exec(value))) return ((iso) => (iso ? { ok: true as const, iso } : impossible))(calendar(Number(m[1]), Number(m[2]), Number(m[3])));
  if (/^\d{1,2}[-/.]\d{1,2}[-/.]\d{2}$/.test(value) || /^\d{6}$/.test(value)) return { ok: false, error: `Use a four-digit year. ${use}.` };
  return { ok: false, error: `${use}.` };
}
