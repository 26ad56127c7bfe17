import type { Knex } from 'knex';
import { encryptedColumns } from '../crypto/encrypted-columns.js';

/** The only SQL touching the outbox. Runs inside withPractice. */

/** The recipient and the template parameters (a link may carry a credential) are encrypted. */
export const outboxSecrets = encryptedColumns('outbox_messages', {
  to_address: { type: 'text' },
  params: { type: 'json' },
});

export type OutboxRow = {
  id: string;
  practice_id: string;
  channel: 'email' | 'sms';
  template: string;
  to_address: Buffer;
  params: Buffer;
  status: 'pending' | 'sent' | 'failed' | 'suppressed';
  attempts: number;
  next_attempt_at: Date;
  link_id: string | null;
};

export async function insertOutboxMessage(trx: Knex.Transaction, row: Record<string, unknown>): Promise<void> {
  await trx('outbox_messages').insert(row);
}

/** Pending messages due at `now`, oldest first, locked for this run (SKIP LOCKED). */
export function dueMessages(trx: Knex.Transaction, now: Date, limit: number): Promise<OutboxRow[]> {
  return trx('outbox_messages')
    .where({ status: 'pending' })
    .where('next_attempt_at', '<=', now)
    .orderBy('next_attempt_at')
    .limit(limit)
    .forUpdate()
    .skipLocked()
    .select('id', 'practice_id', 'channel', 'template', 'to_address', 'params', 'status', 'attempts', 'next_attempt_at', 'link_id');
}

export function markOutbox(trx: Knex.Transaction, id: string, change: { status: OutboxRow['status']; attempts?: number; next_attempt_at?: Date; last_error?: string | null; sent_at?: Date }): Promise<number> {
  return trx('outbox_messages').where({ id }).update(change);
}

export type MessageStatusRow = { id: string; link_id: string | null; channel: 'email' | 'sms'; template: string; status: OutboxRow['status']; attempts: number; next_attempt_at: Date; last_error: string | null; created_at: Date; sent_at: Date | null };
const STATUS_COLUMNS = ['id', 'link_id', 'channel', 'template', 'status', 'attempts', 'next_attempt_at', 'last_error', 'created_at', 'sent_at'] as const;

/** Delivery status of the messages of these links (no recipient, no parameters). */
export function linkMessages(trx: Knex.Transaction, linkIds: readonly string[]): Promise<MessageStatusRow[]> {
  return linkIds.length === 0 ? Promise.resolve([]) : trx('outbox_messages').whereIn('link_id', linkIds).orderBy('created_at', 'desc').select(STATUS_COLUMNS);
}

/** The practice's recent messages, newest first (status only). */
export function recentMessages(trx: Knex.Transaction, limit: number): Promise<MessageStatusRow[]> {
  return trx('outbox_messages').orderBy('created_at', 'desc').limit(limit).select(STATUS_COLUMNS);
}

/** Text-message opt-outs by phone number (the number is encrypted with a blind index, like a patient's). */
export const optOutSecrets = encryptedColumns('sms_opt_outs', {
  phone: { type: 'text', blindIndex: 'phone' },
});

export function findOptOut(trx: Knex.Transaction, indexes: readonly Buffer[]): Promise<{ id: string; opted_out: boolean } | undefined> {
  return indexes.length === 0 ? Promise.resolve(undefined) : trx('sms_opt_outs').whereIn('phone_bidx', indexes).orderBy('changed_at', 'desc').first('id', 'opted_out');
}

export async function saveOptOut(trx: Knex.Transaction, row: { id: string; practice_id: string; opted_out: boolean; keyword: string; changed_at: Date } & Record<string, unknown>, existing: boolean): Promise<void> {
  if (existing) await trx('sms_opt_outs').where({ id: row.id }).update({ opted_out: row.opted_out, keyword: row.keyword, changed_at: row.changed_at, phone: row.phone, phone_bidx: row.phone_bidx });
  else await trx('sms_opt_outs').insert(row);
}

/** Messages that have been failing since before `since`: tried at least once, not sent, not suppressed. */
export async function failingMessages(trx: Knex.Transaction, since: Date): Promise<number> {
  const [row] = await trx('outbox_messages').whereIn('status', ['pending', 'failed']).where('attempts', '>', 0).where('created_at', '<=', since).count<{ n: string }[]>({ n: '*' });
  return Number(row?.n ?? 0);
}

/** The patient a link belongs to (the outbox checks the patient's communication rules). */
export async function linkPatientId(trx: Knex.Transaction, linkId: string): Promise<string | undefined> {
  return (await trx('patient_links').where({ id: linkId }).first<{ patient_id: string } | undefined>('patient_id'))?.patient_id;
}
