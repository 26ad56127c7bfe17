import type { Knex } from 'knex';
import { channelRules } from '../queries/rights.queries.js';

/**
 * SECURITY (§164.522(b)): whether a message on `channel` to this patient would break a
 * confidential-communication rule the practice agreed to ("email only", "no texts", …). Such a
 * message is recorded as suppressed and never sent — checked when it is queued and again when it
 * is sent (a rule agreed in between still wins), like an SMS opt-out.
 */
export async function channelRefused(trx: Knex.Transaction, patientId: string, channel: 'email' | 'sms'): Promise<boolean> {
  const rules = await channelRules(trx, patientId);
  return rules.some((r) => (channel === 'email' ? r === 'text_only' || r === 'no_email' : r === 'email_only' || r === 'no_text'));
}
