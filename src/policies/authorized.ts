import { AsyncLocalStorage } from 'node:async_hooks';

/**
 * SECURITY: whether the staff request's work asked `authorize()` (Mastodon's `verify_authorized`).
 * staffSession opens one record per signed-in request; `authorize()` marks it; the services' work
 * helpers (services/staff-work.ts) check it when their work completes and, outside production,
 * throw on an action that never asked — a forgotten record-level check fails its test instead of
 * shipping.
 */
interface AuthorizationRecord {
  asked: boolean;
}

const current = new AsyncLocalStorage<AuthorizationRecord>();

/** Runs the rest of a request with a fresh record. */
export function withAuthorizationRecord<T>(fn: () => T): T {
  return current.run({ asked: false }, fn);
}

export function markAuthorized(): void {
  const r = current.getStore();
  if (r) r.asked = true;
}

/** undefined outside a staff request (jobs, the CLI, tests calling services directly). */
export function authorizationAsked(): boolean | undefined {
  return current.getStore()?.asked;
}

export class AuthorizationNotChecked extends Error {
  constructor(what: string) {
    super(`${what} completed without authorize(): every staff action asks the policy (src/policies/index.ts)`);
    this.name = 'AuthorizationNotChecked';
  }
}
