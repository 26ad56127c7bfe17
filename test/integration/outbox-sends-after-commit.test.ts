import { expect } from 'chai';
import { createLogger } from '../../src/config/logger.js';
import { deliverDue, enqueue } from '../../src/messaging/outbox.js';
import type { OutgoingEmail } from '../../src/messaging/transports.js';
import { buildCryptoFixture, type CryptoFixture } from '../support/crypto.js';
import { useTestDatabase } from '../support/db.js';
import { buildPractice, type BuiltPractice } from '../support/factories.js';
import { MemoryTransport } from '../support/mail.js';

/** A slow mail server must not hold a practice transaction (and its row locks) open. */
describe('the outbox sends after its transaction commits', () => {
  const t = useTestDatabase();
  let fx: CryptoFixture;
  let p: BuiltPractice;

  before(async () => {
    fx = await buildCryptoFixture(t.current);
    p = await buildPractice(t.current.owner, { slug: 'outbox-commit' });
  });
  after(() => fx?.cleanup());

  const openTransactions = async () => {
    const r = await t.current.owner.raw<{ rows: { n: string }[] }>("SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND state LIKE 'idle in transaction%'");
    return Number(r.rows[0]!.n);
  };

  it('no transaction is open while the provider is called; the outcome is recorded after', async () => {
    for (const to of ['one@clinic.example', 'two@clinic.example']) {
      await t.current.db.withPractice(p.id, { kind: 'system', id: 'test' }, (trx) => enqueue(trx, fx.keyring, { practiceId: p.id, template: 'staff_password_reset', to, params: { practiceName: 'Outbox Dental', link: 'https://enamel.example/p/outbox-commit/password-reset/x' } }));
    }
    const seen: number[] = [];
    const transport = new (class extends MemoryTransport {
      override async sendEmail(m: OutgoingEmail): Promise<void> {
        seen.push(await openTransactions());
        await super.sendEmail(m);
      }
    })();
    const counts = await deliverDue({ db: t.current.db, keyring: fx.keyring, transport, logger: createLogger('silent') });
    expect(counts.sent).to.equal(2);
    expect(seen, 'open transactions during each send').to.deep.equal([0, 0]);
    const rows = await t.current.db.withPractice(p.id, { kind: 'system', id: 'test' }, (trx) => trx('outbox_messages').select('status', 'attempts'));
    expect(rows.map((r: { status: string; attempts: number }) => `${r.status}/${r.attempts}`)).to.deep.equal(['sent/1', 'sent/1']);
    // A second sender right after finds nothing due: the claim and the outcome were both recorded.
    expect((await deliverDue({ db: t.current.db, keyring: fx.keyring, transport, logger: createLogger('silent') })).sent).to.equal(0);
  });
});
