import type { OutgoingEmail, OutgoingSms, Transport } from '../../src/messaging/transports.js';
import { collectMessages } from './phi-scan.js';

/** Collects messages in memory (the PHI scan reads them too); `failNext` makes the next sends fail like an unreachable server. */
export class MemoryTransport implements Transport {
  readonly kind = 'memory';
  readonly sent: OutgoingEmail[] = [];
  readonly texts: OutgoingSms[] = [];
  failNext = 0;
  constructor() {
    collectMessages(this.sent);
    collectMessages(this.texts);
  }
  async sendEmail(m: OutgoingEmail): Promise<void> {
    this.maybeFail();
    this.sent.push(m);
  }
  async sendSms(m: OutgoingSms): Promise<void> {
    this.maybeFail();
    this.texts.push(m);
  }
  private maybeFail(): void {
    if (this.failNext > 0) {
      this.failNext--;
      throw Object.assign(new Error('connection refused'), { code: 'ECONNREFUSED' });
    }
  }
}
