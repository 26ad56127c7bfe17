import type { Knex } from 'knex';
import type { AuditEventInput } from '../../audit/event.schema.js';
import { PracticeCrypto } from '../../crypto/encrypted-columns.js';
import type { Keyring } from '../../crypto/keyring.js';
import type { Db } from '../../db/tenant.js';
import type { LinkTask } from '../../links/tasks.js';
import type { Meta } from '../../shared/types.js';

/** What a verified patient session may reach: one link of one patient, and that link's tasks only. */
export interface LinkSession {
  practiceId: string;
  linkId: string;
  patientId: string;
  tasks: readonly LinkTask[];
  planId: string | null;
  formTemplateIds: readonly string[];
}

/** An audit event by the patient behind this link ("patient link" actor), in this request. */
export function linkEvent(link: LinkSession, meta: Meta, e: Omit<AuditEventInput, 'practiceId' | 'actor' | 'ip' | 'requestId' | 'patientId'>): AuditEventInput {
  return { practiceId: link.practiceId, actor: { kind: 'patient_link', id: link.linkId }, patientId: link.patientId, ip: meta.ip, requestId: meta.requestId, ...e };
}

/** One tenant transaction in the link's practice, as the patient link, with the practice's crypto handle. */
export function linkWork<T>(d: { db: Db; keyring: Keyring }, link: LinkSession, fn: (trx: Knex.Transaction, pc: PracticeCrypto) => Promise<T>): Promise<T> {
  return d.db.withPractice(link.practiceId, { kind: 'patient_link', id: link.linkId }, (trx) => fn(trx, new PracticeCrypto(d.keyring, trx, link.practiceId)));
}
