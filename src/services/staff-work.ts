import type { Knex } from 'knex';
import type { AuditEventInput } from '../audit/event.schema.js';
import { PracticeCrypto } from '../crypto/encrypted-columns.js';
import type { Keyring } from '../crypto/keyring.js';
import type { Db } from '../db/tenant.js';
import type { StaffActor } from '../policies/index.js';

/** Request facts a service records with its audit events. */
export interface Meta {
  ip: string;
  requestId: string;
  now: Date;
}

/** An audit event by this staff member in this request (the caller adds what happened). */
export function staffEvent(actor: StaffActor, meta: Meta, e: Omit<AuditEventInput, 'practiceId' | 'actor' | 'ip' | 'requestId'>): AuditEventInput {
  return { practiceId: actor.practiceId, actor: { kind: 'user', id: actor.id }, ip: meta.ip, requestId: meta.requestId, ...e };
}

/** One tenant transaction in the actor's practice, as the actor. */
export function staffWork<T>(db: Db, actor: StaffActor, fn: (trx: Knex.Transaction) => Promise<T>): Promise<T> {
  return db.withPractice(actor.practiceId, { kind: 'user', id: actor.id }, fn);
}

/** The same, with the practice's crypto handle for encrypted fields. */
export function staffCryptoWork<T>(d: { db: Db; keyring: Keyring }, actor: StaffActor, fn: (trx: Knex.Transaction, pc: PracticeCrypto) => Promise<T>): Promise<T> {
  return d.db.withPractice(actor.practiceId, { kind: 'user', id: actor.id }, (trx) => fn(trx, new PracticeCrypto(d.keyring, trx, actor.practiceId)));
}
