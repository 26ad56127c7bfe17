import type { Knex } from 'knex';
import type { Meta } from '../shared/types.js';
import type { AuditEventInput } from '../audit/event.schema.js';
import { PracticeCrypto } from '../crypto/encrypted-columns.js';
import type { Keyring } from '../crypto/keyring.js';
import type { Db } from '../db/tenant.js';
import { AuthorizationNotChecked, authorizationAsked } from '../policies/authorized.js';
import type { StaffActor } from '../policies/index.js';

/** An audit event by this staff member in this request (the caller adds what happened). */
export function staffEvent(actor: StaffActor, meta: Meta, e: Omit<AuditEventInput, 'practiceId' | 'actor' | 'ip' | 'requestId'>): AuditEventInput {
  return { practiceId: actor.practiceId, actor: { kind: 'user', id: actor.id }, ip: meta.ip, requestId: meta.requestId, ...e };
}

/**
 * SECURITY: outside production, a staff action whose work completes without having asked
 * `authorize()` (before it or inside it) throws, and so rolls back: a forgotten check fails its test.
 */
const VERIFY = process.env.NODE_ENV !== 'production';

function verified<T>(work: (trx: Knex.Transaction) => Promise<T>): (trx: Knex.Transaction) => Promise<T> {
  const origin = process.env.DEBUG_AUTHZ ? new Error('AUTHZ origin').stack : undefined;
  return async (trx) => {
    const result = await work(trx);
    // DEBUG_AUTHZ=1 names where the unchecked work began (an async stack does not reach back that far).
    if (VERIFY && authorizationAsked() === false) throw new AuthorizationNotChecked(origin ? `the staff action begun ${origin.split('\n').slice(2, 5).join(' ')}` : 'a staff action');
    return result;
  };
}

/** One tenant transaction in the actor's practice, as the actor. */
export function staffWork<T>(db: Db, actor: StaffActor, fn: (trx: Knex.Transaction) => Promise<T>): Promise<T> {
  return db.withPractice(actor.practiceId, { kind: 'user', id: actor.id }, verified(fn));
}

/** The same, with the practice's crypto handle for encrypted fields. */
export function staffCryptoWork<T>(d: { db: Db; keyring: Keyring }, actor: StaffActor, fn: (trx: Knex.Transaction, pc: PracticeCrypto) => Promise<T>): Promise<T> {
  return d.db.withPractice(actor.practiceId, { kind: 'user', id: actor.id }, verified((trx) => fn(trx, new PracticeCrypto(d.keyring, trx, actor.practiceId))));
}
