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
    .select('id', 'practice_id', 'channel', 'template', 'to_address', 'params', 'status', 'attempts', 'next_attempt_at');
}

export function markOutbox(trx: Knex.Transaction, id: string, change: { status: OutboxRow['status']; attempts: number; next_attempt_at?: Date; last_error?: string | null; sent_at?: Date }): Promise<number> {
  return trx('outbox_messages').where({ id }).update(change);
}
