import { randomUUID } from 'node:crypto';
import type { Knex } from 'knex';
import type { Logger } from '../config/logger.js';
import { PracticeCrypto } from '../crypto/encrypted-columns.js';
import type { Keyring } from '../crypto/keyring.js';
import type { Db } from '../db/tenant.js';
import { dueMessages, insertOutboxMessage, markOutbox, outboxSecrets } from '../queries/outbox.queries.js';
import { allPracticeIds } from '../queries/practices.queries.js';
import { audit } from '../audit/record.js';
import { isOptedOut } from './sms-consent.js';
import { renderTemplate, TEMPLATES, type TemplateName } from './templates.js';
import type { Transport } from './transports.js';
import { channelRefused } from './communication-rules.js';
import { linkPatientId } from '../queries/outbox.queries.js';

/**
 * The outbox: `enqueue` writes a message in the caller's transaction (so it exists exactly when
 * the change that caused it commits); `deliverDue` — the outbox job — sends what is due, with
 * retries and exponential backoff (1, 2, 4 … minutes, at most 6 hours apart) and gives up after
 * MAX_ATTEMPTS. Parameters are checked against the template's schema at enqueue time too.
 */
export const MAX_ATTEMPTS = 8;
const BATCH = 50;

export interface NewMessage {
  practiceId: string;
  template: TemplateName;
  to: string;
  params: unknown;
  /** The patient link the message carries (its status shows on the patient's links page). */
  linkId?: string;
  /** Record the message without sending it (a number that opted out, a channel the patient asked the practice not to use): status 'suppressed'. */
  suppressed?: 'opted_out' | 'confidential_communication';
  /** When it is first due (default: now, by the database's clock). */
  at?: Date;
}

export async function enqueue(trx: Knex.Transaction, keyring: Keyring, m: NewMessage): Promise<string> {
  renderTemplate(m.template, m.params); // refuses parameters the template does not allow
  const id = randomUUID();
  const sealed = await outboxSecrets.seal(new PracticeCrypto(keyring, trx, m.practiceId), id, { to_address: m.to, params: m.params });
  await insertOutboxMessage(trx, {
    id,
    practice_id: m.practiceId,
    channel: TEMPLATES[m.template].channel,
    template: m.template,
    link_id: m.linkId ?? null,
    ...(m.at ? { next_attempt_at: m.at } : {}),
    ...(m.suppressed ? { status: 'suppressed', last_error: m.suppressed } : {}),
    ...sealed,
  });
  return id;
}

export function backoffMs(attempts: number): number {
  return Math.min(6 * 3_600_000, 60_000 * 2 ** Math.max(0, attempts - 1));
}

/** An error code safe to store (no message text: it can echo an address). */
function errorCode(err: unknown): string {
  const code = (err as { code?: unknown; responseCode?: unknown } | null)?.code ?? (err as { responseCode?: unknown } | null)?.responseCode;
  const s = typeof code === 'string' || typeof code === 'number' ? String(code) : err instanceof Error ? err.name : 'error';
  return s.replace(/[^A-Za-z0-9_]/g, '_').slice(0, 60) || 'error';
}

export interface OutboxDeps {
  db: Db;
  keyring: Keyring;
  transport: Transport;
  logger: Logger;
}

/** How long a claimed message is left alone by other senders while this one delivers it. */
const CLAIM_MS = 5 * 60_000;

type Claimed = { id: string; attempts: number } & ({ channel: 'sms'; to: string; text: string } | { channel: 'email'; to: string; body: ReturnType<typeof renderTemplate> });

/**
 * Sends every due message of every practice. Returns counts (never addresses or bodies).
 * SECURITY/NOTE: no transaction stays open while a provider is called (SMTP and SMS calls may take
 * seconds): one short transaction claims the due messages (locked, skipping ones another sender
 * holds; opt-outs suppressed there), the sends run outside it, and a second one records each
 * outcome. A crash between the two re-sends after the claim runs out (at least once, as before).
 */
export async function deliverDue(d: OutboxDeps, now: Date = new Date()): Promise<{ sent: number; retried: number; failed: number; suppressed: number }> {
  const counts = { sent: 0, retried: 0, failed: 0, suppressed: 0 };
  const retry = async (trx: Knex.Transaction, id: string, attempts: number, err: unknown) => {
    const giveUp = attempts >= MAX_ATTEMPTS;
    await markOutbox(trx, id, { status: giveUp ? 'failed' : 'pending', attempts, next_attempt_at: new Date(now.getTime() + backoffMs(attempts)), last_error: errorCode(err) });
    d.logger.warn({ messageId: id, attempts, error: errorCode(err) }, giveUp ? 'message failed for good' : 'message will be retried');
    if (giveUp) counts.failed++;
    else counts.retried++;
  };
  for (const practiceId of await allPracticeIds(d.db.knex)) {
    const claimed = await d.db.withPractice(practiceId, { kind: 'system', id: 'outbox' }, async (trx) => {
      const pc = new PracticeCrypto(d.keyring, trx, practiceId);
      const out: Claimed[] = [];
      for (const row of await dueMessages(trx, now, BATCH)) {
        const attempts = row.attempts + 1;
        try {
          const { to_address, params } = await outboxSecrets.open(pc, row);
          const body = renderTemplate(row.template as TemplateName, params);
          // TCPA: a STOP that arrived after the message was queued still wins; so does a
          // confidential-communication rule agreed since (§164.522(b)).
          const patientId = row.link_id ? await linkPatientId(trx, row.link_id) : undefined;
          const because = patientId && (await channelRefused(trx, patientId, row.channel)) ? 'confidential_communication' : row.channel === 'sms' && (await isOptedOut(pc, to_address!)) ? 'opted_out' : undefined;
          if (because) {
            await markOutbox(trx, row.id, { status: 'suppressed', last_error: because });
            await audit.record(trx, { practiceId, actor: { kind: 'system', id: 'outbox' }, action: 'message_suppressed', resource: { type: 'message', id: row.id }, outcome: 'denied', ...(patientId ? { patientId } : {}), details: { channel: row.channel, suppressed_because: because } });
            counts.suppressed++;
            continue;
          }
          await markOutbox(trx, row.id, { status: 'pending', next_attempt_at: new Date(now.getTime() + CLAIM_MS) });
          out.push(row.channel === 'sms' ? { id: row.id, attempts, channel: 'sms', to: to_address!, text: body.text } : { id: row.id, attempts, channel: 'email', to: to_address!, body });
        } catch (err) {
          await retry(trx, row.id, attempts, err);
        }
      }
      return out;
    });
    if (claimed.length === 0) continue;
    const outcomes: { c: Claimed; err?: unknown }[] = [];
    for (const c of claimed) {
      try {
        if (c.channel === 'sms') await d.transport.sendSms({ id: c.id, to: c.to, text: c.text });
        else await d.transport.sendEmail({ id: c.id, to: c.to, ...c.body });
        outcomes.push({ c });
      } catch (err) {
        outcomes.push({ c, err });
      }
    }
    await d.db.withPractice(practiceId, { kind: 'system', id: 'outbox' }, async (trx) => {
      for (const { c, err } of outcomes) {
        if (err === undefined) {
          await markOutbox(trx, c.id, { status: 'sent', attempts: c.attempts, sent_at: now, last_error: null });
          counts.sent++;
        } else {
          await retry(trx, c.id, c.attempts, err);
        }
      }
    });
  }
  return counts;
}
