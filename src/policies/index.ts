import type { Permission } from '../permissions.js';
import type { RESOURCE_TYPES } from '../audit/event.schema.js';
import type { StaffActor } from './actor.js';
import { auditPolicy } from './audit.policy.js';
import { markAuthorized } from './authorized.js';
import { compliancePolicy } from './compliance.policy.js';
import { patientPolicy } from './patient.policy.js';
import { practicePolicy } from './practice.policy.js';
import { rolePolicy } from './role.policy.js';
import { userPolicy } from './user.policy.js';

/**
 * One authorization call: `authorize(actor, 'user.deactivate', record)`. One policy file per
 * resource (Mastodon-style); each action is a pure function of the actor and the record, including
 * the record-level checks (same practice, location, owner-only). Controllers call `authorize` and
 * throw `AccessDenied` on false; app.ts turns that into the same not-found page as a missing record,
 * and audits the denial (middleware/access-denied.ts).
 */
const POLICIES = { user: userPolicy, role: rolePolicy, audit: auditPolicy, patient: patientPolicy, compliance: compliancePolicy, practice: practicePolicy } as const;

type Policies = typeof POLICIES;
export type Action = { [R in keyof Policies]: `${R}.${keyof Policies[R] & string}` }[keyof Policies];
type Rule<A extends Action> = A extends `${infer R extends keyof Policies}.${infer V}` ? (V extends keyof Policies[R] ? Policies[R][V] : never) : never;
type RestOf<F> = F extends (actor: StaffActor, ...rest: infer P) => boolean ? P : never;

/** SECURITY: the one authorization decision. Pure; no I/O. */
export function authorize<A extends Action>(actor: StaffActor, action: A, ...rest: RestOf<Rule<A>>): boolean {
  markAuthorized();
  const [resource, verb] = action.split('.') as [keyof Policies, string];
  const rule = (POLICIES[resource] as Record<string, (actor: StaffActor, ...args: unknown[]) => boolean>)[verb];
  if (!rule) throw new Error(`unknown action: ${action}`);
  return rule(actor, ...rest);
}

/**
 * Thrown when access is refused, or a record asked for by id is not in the actor's practice. The
 * user sees the not-found page either way; the audit log records the denial.
 */
export class AccessDenied extends Error {
  readonly status = 404;
  constructor(
    readonly detail: { permission?: Permission; resource?: { type: (typeof RESOURCE_TYPES)[number]; id?: string }; patientId?: string } = {},
  ) {
    super('access denied');
    this.name = 'AccessDenied';
  }
}

/** Throws AccessDenied unless `allowed`. */
export function ensure(allowed: boolean, detail?: AccessDenied['detail']): asserts allowed {
  if (!allowed) throw new AccessDenied(detail);
}

export type { StaffActor } from './actor.js';
