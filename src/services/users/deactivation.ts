import type { Knex } from 'knex';
import { audit, type AuditEventInput } from '../../audit/record.js';
import { deactivateAccount, type DeactivationSteps, type UserRow } from '../../queries/users.queries.js';

type EventOf = (e: Omit<AuditEventInput, 'practiceId' | 'actor' | 'ip' | 'requestId'>) => AuditEventInput;

/**
 * SECURITY: deactivates an account as a checklist (queries/users.queries.ts deactivateAccount:
 * status, sessions, TOTP secret, recovery codes, open invitations and links it created) and records
 * each step in the audit log in the same transaction, by whoever did it (`eventOf`: an
 * administrator, the access review, the inactivity job). One writer for every way an account ends.
 */
export async function deactivateWithChecklist(
  trx: Knex.Transaction,
  practiceId: string,
  userId: string,
  reason: NonNullable<UserRow['deactivated_reason']>,
  now: Date,
  eventOf: EventOf,
  reference?: string,
): Promise<DeactivationSteps> {
  const steps = await deactivateAccount(trx, practiceId, userId, reason, now);
  const user = { type: 'user' as const, id: userId };
  const ref = reference ? { reference_id: reference } : {};
  await audit.record(trx, eventOf({ action: 'user_deactivate', resource: user, outcome: 'allowed', details: { count: steps.sessions, ...ref } }));
  await audit.record(trx, eventOf({ action: 'session_revoke', resource: user, outcome: 'allowed', details: { count: steps.sessions } }));
  await audit.record(trx, eventOf({ action: 'mfa_destroy', resource: user, outcome: 'allowed', details: { count: steps.recoveryCodes, mfa_required: steps.secretDestroyed } }));
  if (steps.invitations > 0) await audit.record(trx, eventOf({ action: 'invitation_revoke', resource: user, outcome: 'allowed', details: { count: steps.invitations } }));
  if (steps.links > 0) await audit.record(trx, eventOf({ action: 'link_revoke', resource: { type: 'portal_link' }, outcome: 'allowed', details: { count: steps.links, target_type: 'user', target_id: userId } }));
  return steps;
}
