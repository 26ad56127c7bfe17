/**
 * How a practice shows dates and times: its date format and its time zone (practice settings).
 * Calendar dates (a date of birth) are shown as stored, never shifted; instants (a sign-in, a
 * signature) are shown in the practice's zone with its abbreviation. Exports stay in UTC ISO 8601.
 * Views reach it as `fmt` (res.locals); pages outside a practice get UTC with ISO dates.
 */
export const DATE_FORMATS = ['MM/DD/YYYY', 'DD/MM/YYYY', 'YYYY-MM-DD'] as const;
export type DateFormat = (typeof DATE_FORMATS)[number];

export interface Formatter {
  readonly format: DateFormat;
  readonly timeZone: string;
  /** The format as the person types it, for hints and errors ("MM/DD/YYYY"). */
  readonly dateHint: string;
  /** A calendar date (ISO 'YYYY-MM-DD', as stored) or the day of an instant in the practice's zone. */
  date(value: string | Date | null | undefined): string;
  /** An instant: date, hour and minute (seconds too when asked) in the practice's zone, with the zone. */
  dateTime(value: Date | null | undefined, options?: { seconds?: boolean }): string;
  /** The time of an instant in the practice's zone, with the zone. */
  time(value: Date | null | undefined): string;
}

/** Whether `zone` is an IANA time zone this Node knows. */
export function isTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return zone.length > 0;
  } catch {
    return false;
  }
}

function ordered(format: DateFormat, y: string, m: string, d: string): string {
  if (format === 'MM/DD/YYYY') return `${m}/${d}/${y}`;
  if (format === 'DD/MM/YYYY') return `${d}/${m}/${y}`;
  return `${y}-${m}-${d}`;
}

const formatters = new Map<string, Formatter>();

export function formatter(format: DateFormat = 'YYYY-MM-DD', timeZone = 'UTC'): Formatter {
  const cacheKey = `${format}|${timeZone}`;
  const cached = formatters.get(cacheKey);
  if (cached) return cached;
  const twelveHour = format === 'MM/DD/YYYY';
  // PERF: the two Intl formatters are built once per format and zone (building one costs far more than using it).
  const intl = [false, true].map((seconds) => new Intl.DateTimeFormat('en-US', {
    timeZone, year: 'numeric', month: '2-digit', day: '2-digit', hour: twelveHour ? 'numeric' : '2-digit', minute: '2-digit',
    ...(seconds ? { second: '2-digit' } : {}), hour12: twelveHour, timeZoneName: 'short',
  }));
  const parts = (value: Date, seconds: boolean): Record<string, string> => Object.fromEntries(intl[seconds ? 1 : 0]!.formatToParts(value).map((p) => [p.type, p.value]));
  const clock = (p: Record<string, string>, seconds: boolean): string =>
    `${p.hour === '24' ? '00' : p.hour}:${p.minute}${seconds ? `:${p.second}` : ''}${twelveHour ? ` ${p.dayPeriod}` : ''} ${p.timeZoneName}`;
  const f: Formatter = {
    format,
    timeZone,
    dateHint: format,
    date(value) {
      if (value === null || value === undefined || value === '') return '';
      if (typeof value === 'string') {
        const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(value);
        return m ? ordered(format, m[1]!, m[2]!, m[3]!) : value;
      }
      const p = parts(value, false);
      return ordered(format, p.year!, p.month!, p.day!);
    },
    dateTime(value, options = {}) {
      if (!value) return '';
      const p = parts(value, options.seconds ?? false);
      return `${ordered(format, p.year!, p.month!, p.day!)} ${clock(p, options.seconds ?? false)}`;
    },
    time(value) {
      return value ? clock(parts(value, false), false) : '';
    },
  };
  formatters.set(cacheKey, f);
  return f;
}

/** The practice as a patient page shows it (header on every page): never more than its public page says. */
export interface PracticeBrand {
  name: string;
  phone: string;
  /** Cache-busted URL of the logo, when the practice has one. */
  logoUrl?: string;
  fmt: Formatter;
}

export function presentBrand(row: { name: string; slug: string; phone: string | null; logo_updated_at: Date | null; date_format: DateFormat; timezone: string }): PracticeBrand {
  return {
    name: row.name,
    phone: row.phone ?? '',
    ...(row.logo_updated_at ? { logoUrl: `/p/${row.slug}/logo.png?v=${row.logo_updated_at.getTime()}` } : {}),
    fmt: formatter(row.date_format, row.timezone),
  };
}

/** The instant of a wall-clock day and time ("2026-03-10", "14:30") in a time zone. */
export function zonedInstant(day: string, time: string, timeZone: string): Date {
  const wall = Date.parse(`${day}T${time || '00:00'}:00Z`);
  const offsetAt = (instant: number): number => {
    const p = Object.fromEntries(new Intl.DateTimeFormat('en-US', { timeZone, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' }).formatToParts(new Date(instant)).map((x) => [x.type, x.value]));
    return Date.UTC(Number(p.year), Number(p.month) - 1, Number(p.day), Number(p.hour), Number(p.minute), Number(p.second)) - instant;
  };
  const first = wall - offsetAt(wall);
  return new Date(wall - offsetAt(first));
}
