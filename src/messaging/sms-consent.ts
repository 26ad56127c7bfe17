import { randomUUID } from 'node:crypto';
import type { Knex } from 'knex';
import type { PracticeCrypto } from '../crypto/encrypted-columns.js';
import { findOptOut, optOutSecrets, saveOptOut } from '../queries/outbox.queries.js';

/**
 * TCPA: text messages go only to patients whose consent is recorded (time and source, on the
 * patient), and never to a number that opted out. Opt-outs are kept per phone number — an inbound
 * STOP names a number, not a patient — until the number sends START or UNSTOP.
 */
export const STOP_WORDS = ['STOP', 'STOPALL', 'UNSUBSCRIBE', 'CANCEL', 'END', 'QUIT'] as const;
export const START_WORDS = ['START', 'UNSTOP'] as const;
export const HELP_WORDS = ['HELP', 'INFO'] as const;

export type Keyword = { kind: 'stop' | 'start' | 'help'; word: string } | undefined;

/** The keyword an inbound message is (the whole message, case and punctuation aside), if any. */
export function keywordOf(body: string): Keyword {
  const word = body.trim().toUpperCase().replace(/[^A-Z]/g, '');
  if ((STOP_WORDS as readonly string[]).includes(word)) return { kind: 'stop', word };
  if ((START_WORDS as readonly string[]).includes(word)) return { kind: 'start', word };
  if ((HELP_WORDS as readonly string[]).includes(word)) return { kind: 'help', word };
  return undefined;
}

/** A phone number in E.164 (+15551234567); North American 10-digit numbers get +1. */
export function toE164(raw: string): string | undefined {
  const trimmed = raw.trim();
  const digits = trimmed.replace(/\D/g, '');
  if (trimmed.startsWith('+')) return digits.length >= 8 && digits.length <= 15 && !digits.startsWith('0') ? `+${digits}` : undefined;
  if (digits.length === 10) return `+1${digits}`;
  if (digits.length === 11 && digits.startsWith('1')) return `+${digits}`;
  return undefined;
}

export async function isOptedOut(pc: PracticeCrypto, phone: string): Promise<boolean> {
  return (await findOptOut(pc.trx, await optOutSecrets.lookup(pc, 'phone', phone)))?.opted_out ?? false;
}

/** Records STOP (opted out) or START (opted in again) for a number. */
export async function recordOptChoice(pc: PracticeCrypto, phone: string, optedOut: boolean, keyword: string, now: Date): Promise<void> {
  const trx: Knex.Transaction = pc.trx;
  const existing = await findOptOut(trx, await optOutSecrets.lookup(pc, 'phone', phone));
  const id = existing?.id ?? randomUUID();
  await saveOptOut(trx, { id, practice_id: pc.practiceId, opted_out: optedOut, keyword, changed_at: now, ...(await optOutSecrets.seal(pc, id, { phone })) }, existing !== undefined);
}
