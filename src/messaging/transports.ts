import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import nodemailer from 'nodemailer';
import type { Config } from '../config/env.js';
import type { Logger } from '../config/logger.js';

export interface OutgoingEmail {
  id: string;
  to: string;
  subject: string;
  text: string;
}

export interface OutgoingSms {
  id: string;
  /** E.164 (+15551234567). */
  to: string;
  text: string;
}

export interface EmailSender {
  readonly kind: string;
  sendEmail(message: OutgoingEmail): Promise<void>;
}

export interface SmsSender {
  readonly kind: string;
  sendSms(message: OutgoingSms): Promise<void>;
}

/** What the outbox sends through: one sender per channel. */
export type Transport = EmailSender & SmsSender;

/**
 * Development and evaluation: each message is written to DATA_DIR/mail/<id>.txt (mode 0600) and only
 * its id is logged — never the recipient or the body, which can hold a link with a credential.
 */
export class LogTransport implements Transport {
  readonly kind = 'log';
  constructor(
    private readonly dir: string,
    private readonly logger: Logger,
  ) {}

  async sendEmail(m: OutgoingEmail): Promise<void> {
    await this.write(m.id, `To: ${m.to}\nSubject: ${m.subject}\n\n${m.text}\n`);
    this.logger.info({ messageId: m.id, transport: 'log' }, 'email written to the mail folder');
  }

  async sendSms(m: OutgoingSms): Promise<void> {
    await this.write(m.id, `SMS to: ${m.to}\n\n${m.text}\n`);
    this.logger.info({ messageId: m.id, transport: 'log' }, 'text message written to the mail folder');
  }

  private async write(id: string, content: string): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    await writeFile(path.join(this.dir, `${id}.txt`), content, { mode: 0o600 });
  }
}

/** SMTP (nodemailer) from SMTP_URL, e.g. smtps://user:password@mail.example.com:465. */
export class SmtpTransport implements EmailSender {
  readonly kind = 'smtp';
  readonly #transporter: nodemailer.Transporter;
  constructor(
    url: string,
    private readonly from: string,
  ) {
    this.#transporter = nodemailer.createTransport(url);
  }

  async sendEmail(m: OutgoingEmail): Promise<void> {
    await this.#transporter.sendMail({ from: this.from, to: m.to, subject: m.subject, text: m.text, messageId: `<${m.id}@enamel>` });
  }
}

/** A refused or failed provider call; `code` (HTTP_<status> or the network error's code) is what the outbox stores. */
export class SmsProviderError extends Error {
  override name = 'SmsProviderError';
  constructor(readonly code: string) {
    super(`SMS provider refused the message (${code})`);
  }
}

/**
 * Text messages through a Twilio-compatible HTTPS API: POST
 * {SMS_API_URL}/2010-04-01/Accounts/{sid}/Messages.json with To, From, Body, basic auth sid:token.
 * Ten seconds at most per call; any non-2xx answer is an error (the outbox retries with backoff).
 */
export class HttpSmsTransport implements SmsSender {
  readonly kind = 'http-sms';
  constructor(private readonly o: { apiUrl: string; accountSid: string; authToken: string; from: string }) {}

  async sendSms(m: OutgoingSms): Promise<void> {
    const url = new URL(`/2010-04-01/Accounts/${encodeURIComponent(this.o.accountSid)}/Messages.json`, this.o.apiUrl);
    let res: Response;
    try {
      res = await fetch(url, {
        method: 'POST',
        headers: { authorization: `Basic ${Buffer.from(`${this.o.accountSid}:${this.o.authToken}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded', 'idempotency-key': m.id },
        body: new URLSearchParams({ To: m.to, From: this.o.from, Body: m.text }),
        signal: AbortSignal.timeout(10_000),
        redirect: 'error',
      });
    } catch (err) {
      const cause = (err as { cause?: { code?: unknown } }).cause?.code;
      throw new SmsProviderError(typeof cause === 'string' ? cause : err instanceof Error ? err.name : 'network');
    }
    await res.arrayBuffer(); // drain; the answer may echo the number, so it is never logged
    if (!res.ok) throw new SmsProviderError(`HTTP_${res.status}`);
  }
}

/** The transports the configuration asks for: email by MAIL_TRANSPORT, text messages by SMS_TRANSPORT. */
export function createTransport(config: Config, logger: Logger): Transport {
  const log = new LogTransport(path.join(config.dataDir, 'mail'), logger);
  const email: EmailSender = config.mail.transport === 'smtp' ? new SmtpTransport(config.mail.url, config.mail.from) : log;
  const { sms: s } = config;
  const sms: SmsSender = s.transport === 'http' && s.accountSid && s.authToken && s.from ? new HttpSmsTransport({ apiUrl: s.apiUrl, accountSid: s.accountSid, authToken: s.authToken, from: s.from }) : log;
  return { kind: `${email.kind}+${sms.kind}`, sendEmail: (m) => email.sendEmail(m), sendSms: (m) => sms.sendSms(m) };
}
