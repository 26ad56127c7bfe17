import { createHmac } from 'node:crypto';
import type { SecretKey } from './secret-key.js';

/**
 * Blind indexes: HMAC-SHA-256 under the practice's blind-index key over a normalised value,
 * truncated to BLIND_INDEX_BYTES (64 bits). Exact match only; the kind is part of the MAC input, so
 * a phone number and a name never collide by design. 64 bits keep accidental collisions negligible
 * at a million rows per practice (~3·10⁻⁸) while revealing nothing beyond equality.
 */
export const BLIND_INDEX_BYTES = 8;

export type BlindIndexKind = 'name' | 'dob' | 'phone' | 'email' | 'name-prefix' | 'phone-last4';

/** How many leading letters a name-prefix index keeps (and the shortest prefix a search uses). */
export const NAME_PREFIX_LENGTH = 3;

/** Normalises a value for its kind; undefined when the input is not a valid value of that kind. */
export function normalizeForIndex(kind: BlindIndexKind, raw: string): string | undefined {
  const value = raw.normalize('NFKC').trim();
  switch (kind) {
    case 'name':
      return normalizeName(value);
    case 'name-prefix': {
      // The first NAME_PREFIX_LENGTH letters of the normalised name; shorter names have none.
      const n = normalizeName(value);
      return n && n.length >= NAME_PREFIX_LENGTH ? [...n].slice(0, NAME_PREFIX_LENGTH).join('') : undefined;
    }
    case 'phone':
      return normalizePhone(value);
    case 'phone-last4':
      // A whole phone number gives its last four digits; a search types the four digits alone.
      return /^\d{4}$/.test(value) ? value : normalizePhone(value)?.slice(-4);
    case 'email': {
      const e = value.toLowerCase();
      return /^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(e) ? e : undefined;
    }
    case 'dob':
      return normalizeDate(value);
  }
}

/** Case, spaces and punctuation do not matter: "O'Brien", "o brien", "OBRIEN" are one name. */
export function normalizeName(value: string): string | undefined {
  const n = value.normalize('NFKC').trim().toLocaleLowerCase('en-US').replace(/[^\p{L}\p{N}]/gu, '');
  return n.length > 0 ? n : undefined;
}

function normalizePhone(value: string): string | undefined {
  let digits = value.replace(/\D/g, '');
  // CASE: North American numbers written with the country code.
  if (digits.length === 11 && digits.startsWith('1')) digits = digits.slice(1);
  return digits.length >= 7 && digits.length <= 15 ? digits : undefined;
}

/**
 * Accepts YYYY-MM-DD, YYYY/MM/DD, YYYYMMDD, and US order MM/DD/YYYY, M/D/YYYY, MM-DD-YYYY,
 * MM.DD.YYYY; returns the ISO date, or undefined if it is not a real calendar date.
 */
export function normalizeDate(value: string): string | undefined {
  let y: number, m: number, d: number;
  let match = /^(\d{4})([-/.])(\d{1,2})\2(\d{1,2})$/.exec(value) ?? /^(\d{4})()(\d{2})(\d{2})$/.exec(value);
  if (match) {
    [y, m, d] = [Number(match[1]), Number(match[3]), Number(match[4])];
  } else if ((match = /^(\d{1,2})[-/.](\d{1,2})[-/.](\d{4})$/.exec(value))) {
    [m, d, y] = [Number(match[1]), Number(match[2]), Number(match[3])];
  } else {
    return undefined;
  }
  const date = new Date(Date.UTC(y, m - 1, d));
  if (date.getUTCFullYear() !== y || date.getUTCMonth() !== m - 1 || date.getUTCDate() !== d || y < 1850) return undefined;
  return date.toISOString().slice(0, 10);
}

/** The blind index of an already-normalised value. */
export function blindIndex(key: SecretKey, kind: BlindIndexKind, normalized: string): Buffer {
  return createHmac('sha256', key.bytes).update(`${kind}\u0000${normalized}`).digest().subarray(0, BLIND_INDEX_BYTES);
}
