import type { OutgoingEmail, Transport } from '../../src/messaging/transports.js';

/** Collects messages in memory; `failNext` makes the next sends fail like an unreachable server. */
export class MemoryTransport implements Transport {
  readonly kind = 'memory';
  readonly sent: OutgoingEmail[] = [];
  failNext = 0;
  async sendEmail(m: OutgoingEmail): Promise<void> {
    if (this.failNext > 0) {
      this.failNext--;
      throw Object.assign(new Error('connection refused'), { code: 'ECONNREFUSED' });
    }
    this.sent.push(m);
  }
}
