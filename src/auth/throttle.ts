import type { Knex } from 'knex';
import { ipBlockedUntil, recordIpFailure } from '../queries/throttle.queries.js';

/**
 * One throttle for every credential step: the staff password, the second factor, the operator
 * sign-in and the patient's date of birth. Two counters each:
 *  - per account (or per link): the failures stored on the account row — a growing delay after each
 *    failure (1, 2, 4, 8 s), then a lock after ACCOUNT_MAX_FAILURES in a row (15 minutes for
 *    accounts; for good for a patient link);
 *  - per IP address and scope (`throttle_counters`): IP_LIMITS[scope].max failures within
 *    IP_WINDOW_MS block that address for IP_WINDOW_MS, across every account and practice.
 * State lives in PostgreSQL, so every replica enforces the same counters. Callers give one neutral
 * answer for every refusal.
 */
export type ThrottleScope = 'password' | 'second_factor' | 'operator' | 'dob';

export const ACCOUNT_MAX_FAILURES = 5;
export const ACCOUNT_LOCK_MS = 15 * 60_000;
export const IP_WINDOW_MS = 15 * 60_000;

/** Failures from one address within the window before it is blocked, per step. */
export const IP_LIMITS: Record<ThrottleScope, { max: number }> = {
  password: { max: 30 },
  // NOTE: a six-digit code is guessable: fewer tries from one address than for passwords.
  second_factor: { max: 20 },
  operator: { max: 30 },
  dob: { max: 30 },
};

export function growingDelayMs(failures: number): number {
  return Math.min(8_000, 1000 * 2 ** (failures - 1));
}

/** An account's state after one more failure: the new count, how long it is refused, and whether this failure locked it. */
export function accountFailure(previousFailures: number, now: Date): { failures: number; lockedUntil: Date; lockedNow: boolean } {
  const failures = previousFailures + 1;
  const locked = failures >= ACCOUNT_MAX_FAILURES;
  return { failures, lockedUntil: new Date(now.getTime() + (locked ? ACCOUNT_LOCK_MS : growingDelayMs(failures))), lockedNow: failures === ACCOUNT_MAX_FAILURES };
}

/** Whether an account is refusing attempts (locked, or inside its growing delay). */
export function accountRefusing(lockedUntil: Date | null, now: Date): boolean {
  return Boolean(lockedUntil && lockedUntil > now);
}

/** SECURITY: whether this address is blocked for this step. */
export async function ipBlocked(knex: Knex, scope: ThrottleScope, ip: string, now: Date): Promise<boolean> {
  const until = await ipBlockedUntil(knex, scope, ip);
  return Boolean(until && until > now);
}

/** Counts one failure from this address (its own short transaction, so a rolled-back attempt still counts). Returns whether the address is now blocked. */
export function countIpFailure(knex: Knex, scope: ThrottleScope, ip: string, now: Date): Promise<boolean> {
  return recordIpFailure(knex, { scope, ip, now, windowMs: IP_WINDOW_MS, max: IP_LIMITS[scope].max });
}
