import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { expect } from 'chai';
import { hashPassword } from '../../src/auth/password-hash.js';
import { insertUser } from '../../src/queries/users.queries.js';
import { buildTestApp } from '../support/app.js';
import { browser } from '../support/browser.js';
import { buildCryptoFixture, type CryptoFixture } from '../support/crypto.js';
import { useTestDatabase } from '../support/db.js';
import { buildPractice, type BuiltPractice } from '../support/factories.js';

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

/**
 * Account enumeration by timing (ASVS V6.3.8): an unknown email and a wrong password for a real
 * account must not be told apart by how long the answer takes. Medians over 20 tries each, from
 * distinct addresses (so the per-IP block never shortens a path), alternating the two kinds.
 */
describe('sign-in timing: unknown account and wrong password take the same time', function () {
  this.timeout(120_000);
  const t = useTestDatabase();
  let fx: CryptoFixture;
  let p: BuiltPractice;

  before(async () => {
    fx = await buildCryptoFixture(t.current);
    p = await buildPractice(t.current.owner, { slug: 'signin-timing' });
  });
  after(() => fx?.cleanup());

  it('the medians over 20 tries differ by less than 10 ms', async () => {
    const built = buildTestApp(t.current, { TRUST_PROXY: 'loopback' }, { keyring: fx.keyring });
    const emails: string[] = [];
    const hash = await hashPassword('the right password for this');
    for (let i = 0; i < 20; i++) {
      const id = randomUUID();
      emails.push(`real-${i}@clinic.example`);
      await t.current.db.withPractice(p.id, { kind: 'system', id: 'test' }, (trx) => insertUser(trx, { id, practice_id: p.id, email: `real-${i}@clinic.example`, display_name: 'Timing Person', status: 'active', is_owner: false, password_hash: hash }));
    }
    const b = browser(built.app);
    const page = await b.form(`/p/${p.slug}/sign-in`);
    const attempt = async (email: string, ip: string): Promise<number> => {
      const t0 = performance.now();
      const res = await b.agent.post(`/p/${p.slug}/sign-in`).set('X-Forwarded-For', ip).type('form').send({ _csrf: page.token, email, password: 'a wrong password entirely' });
      const ms = performance.now() - t0;
      expect(res.status).to.equal(401);
      return ms;
    };
    // Warm both paths once (the first argon2 run and the first queries of each kind).
    await attempt('warm-unknown@clinic.example', '198.18.0.1');
    await attempt(emails[0]!, '198.18.0.2');
    const unknown: number[] = [];
    const wrong: number[] = [];
    for (let i = 0; i < 20; i++) {
      unknown.push(await attempt(`nobody-${i}@clinic.example`, `198.18.1.${i + 1}`));
      wrong.push(await attempt(emails[i]!, `198.18.2.${i + 1}`));
    }
    const gap = Math.abs(median(unknown) - median(wrong));
    console.log(`      median unknown ${median(unknown).toFixed(1)} ms, wrong password ${median(wrong).toFixed(1)} ms, gap ${gap.toFixed(1)} ms`);
    expect(gap).to.be.lessThan(10);
  });
});
