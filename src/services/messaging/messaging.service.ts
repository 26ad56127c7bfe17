import type { Keyring } from '../../crypto/keyring.js';
import { PracticeCrypto } from '../../crypto/encrypted-columns.js';
import type { Db } from '../../db/tenant.js';
import { audit } from '../../audit/record.js';
import { keywordOf, recordOptChoice } from '../../messaging/sms-consent.js';
import { SMS_REPLIES } from '../../messaging/templates.js';
import { authorize, ensure, type StaffActor } from '../../policies/index.js';
import { recentMessages, type MessageStatusRow } from '../../queries/outbox.queries.js';
import { findCurrentPractice, findPracticePhone } from '../../queries/practices.queries.js';
import { staffWork as work } from '../staff-work.js';

/** The practice's recent messages: delivery status only (no recipient, no content, no patient). */
export async function messageStatuses(db: Db, actor: StaffActor): Promise<MessageStatusRow[]> {
  ensure(authorize(actor, 'practice.messageStatus'), { permission: 'portal.send' });
  return work(db, actor, (trx) => recentMessages(trx, 200));
}

/**
 * An inbound text (already signature-checked): STOP and its synonyms opt the number out, START or
 * UNSTOP opt it back in, HELP gets the help text; anything else is ignored. Returns the reply, if any.
 */
export async function handleInboundSms(d: { db: Db; keyring: Keyring }, practiceId: string, from: string, body: string, now: Date): Promise<string | undefined> {
  const keyword = keywordOf(body);
  if (!keyword) return undefined;
  return d.db.withPractice(practiceId, { kind: 'system', id: 'sms-webhook' }, async (trx) => {
    const name = (await findCurrentPractice(trx))?.name ?? 'Your dental office';
    if (keyword.kind === 'help') return SMS_REPLIES.help(name, await findPracticePhone(trx));
    const optedOut = keyword.kind === 'stop';
    await recordOptChoice(new PracticeCrypto(d.keyring, trx, practiceId), from, optedOut, keyword.word, now);
    await audit.record(trx, { practiceId, actor: { kind: 'system', id: 'sms-webhook' }, action: optedOut ? 'sms_opt_out' : 'sms_opt_in', outcome: 'allowed', details: { channel: 'sms' } });
    return optedOut ? SMS_REPLIES.stop(name) : SMS_REPLIES.start(name);
  });
}
