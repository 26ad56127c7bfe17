import { createHmac, timingSafeEqual } from 'node:crypto';
import type { RequestHandler } from 'express';
import { z } from 'zod';
import type { Clock } from '../shared/types.js';
import type { Config } from '../config/env.js';
import type { Keyring } from '../crypto/keyring.js';
import type { Db } from '../db/tenant.js';
import { toE164 } from '../messaging/sms-consent.js';
import { activePracticeId } from '../services/practices/front-page.service.js';
import { handleInboundSms, messageStatuses } from '../services/messaging/messaging.service.js';
import { actorOf } from './request.js';

export interface MessagesControllerDeps {
  db: Db;
  keyring: Keyring;
  clock: Clock;
  config: Config;
}

/**
 * The provider's request signature (Twilio's scheme): base64 HMAC-SHA1, keyed with the auth token,
 * of the full URL the provider called followed by every POST parameter, sorted by name, as name+value.
 */
export function smsSignature(authToken: string, url: string, params: Record<string, string>): string {
  const data = url + Object.keys(params).sort().map((k) => k + params[k]).join('');
  return createHmac('sha1', authToken).update(data, 'utf8').digest('base64');
}

function validSignature(authToken: string, url: string, params: Record<string, string>, given: string): boolean {
  const expected = Buffer.from(smsSignature(authToken, url, params));
  const actual = Buffer.from(given);
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}

const slugParams = z.object({ slug: z.string().regex(/^[a-z0-9-]{1,40}$/) });
const inbound = z.object({ From: z.string().max(40), Body: z.string().max(1600) });
const flat = z.record(z.string(), z.string());

const escapeXml = (s: string) => s.replace(/[<>&'"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[c]!);

/** Outbox status for staff, and the inbound SMS webhook (STOP / START / HELP). */
export function messagesController(d: MessagesControllerDeps) {
  return {
    /** GET /p/:slug/messages */
    index: (async (_req, res) => {
      const actor = actorOf(res);
      res.render('messages/index', { title: 'Messages', slug: actor.slug, actor, messages: await messageStatuses(d.db, actor) });
    }) satisfies RequestHandler,

    /**
     * POST /hooks/sms/:slug — SECURITY: no session and no CSRF token (the provider calls it); the
     * provider's signature over the URL and parameters is the credential, checked before anything
     * else. A bad or missing signature, or no configured token, is 403.
     */
    inbound: (async (req, res) => {
      const token = d.config.sms.authToken;
      const params = flat.safeParse(req.body ?? {});
      const url = new URL(req.originalUrl, d.config.publicUrl).toString();
      if (!token || !params.success || !validSignature(token, url, params.data, req.get('x-twilio-signature') ?? '')) {
        res.status(403).type('text/plain').send('Forbidden');
        return;
      }
      const slug = slugParams.safeParse(req.params);
      const practiceId = slug.success ? await activePracticeId(d.db, slug.data.slug) : undefined;
      if (!practiceId) {
        res.status(404).type('text/plain').send('Not found');
        return;
      }
      const message = inbound.safeParse(params.data);
      const from = message.success ? toE164(message.data.From) : undefined;
      if (!message.success || !from) {
        res.status(400).type('text/plain').send('From and Body are required');
        return;
      }
      const reply = await handleInboundSms(d, practiceId, from, message.data.Body, new Date(d.clock()));
      res.type('text/xml').send(`<?xml version="1.0" encoding="UTF-8"?><Response>${reply ? `<Message>${escapeXml(reply)}</Message>` : ''}</Response>`);
    }) satisfies RequestHandler,
  };
}
