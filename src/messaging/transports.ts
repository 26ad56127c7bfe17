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

export interface Transport {
  readonly kind: string;
  sendEmail(message: OutgoingEmail): Promise<void>;
}

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
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    await writeFile(path.join(this.dir, `${m.id}.txt`), `To: ${m.to}\nSubject: ${m.subject}\n\n${m.text}\n`, { mode: 0o600 });
    this.logger.info({ messageId: m.id, transport: 'log' }, 'email written to the mail folder');
  }
}

/** SMTP (nodemailer) from SMTP_URL, e.g. smtps://user:password@mail.example.com:465. */
export class SmtpTransport implements Transport {
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

/** The transport the configuration asks for. */
export function createTransport(config: Config, logger: Logger): Transport {
  return config.mail.transport === 'smtp' ? new SmtpTransport(config.mail.url, config.mail.from) : new LogTransport(config.mail.dir, logger);
}
