import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import { generate } from 'otplib';
import { confirmEnrollment, startEnrollment, verifySecondFactor } from '../../src/auth/mfa.service.js';
import { hashPassword } from '../../src/auth/password-hash.js';
import { insertUser } from '../../src/queries/users.queries.js';
import { ACCOUNT_MAX_FAILURES, IP_LIMITS } from '../../src/auth/throttle.js';
import { buildCryptoFixture, type CryptoFixture } from '../support/crypto.js';
import { useTestDatabase } from '../support/db.js';
import { buildPractice, type BuiltPractice } from '../support/factories.js';

describe('MFA: enrolment, second factor, recovery codes', () => {
  const t = useTestDatabase();
  let fx: CryptoFixture;
  let p: BuiltPractice;
  const now = new Date('2026-11-23T10:00:00Z');
  const epoch = Math.floor(now.getTime() / 1000);
  const meta = (at = now) => ({ ip: '198.51.100.4', requestId: randomUUID(), now: at });

  before(async () => {
    fx = await buildCryptoFixture(t.current);
    p = await buildPractice(t.current.owner);
  });
  after(() => fx?.cleanup());

  async function addUser(): Promise<string> {
    const id = randomUUID();
    const hash = await hashPassword('a long enough pass phrase');
    await t.current.db.withPractice(p.id, { kind: 'system', id: 'test' }, (trx) =>
      insertUser(trx, { id, practice_id: p.id, email: `u-${id.slice(0, 8)}@clinic.example`, display_name: 'MFA User', status: 'active', is_owner: true, password_hash: hash }),
    );
    return id;
  }

  it('enrols only after a valid code, stores the secret encrypted, and accepts each code once', async () => {
    const userId = await addUser();
    const { secret, uri, qrSvg } = await startEnrollment('owner@clinic.example', 'Enamel');
    expect(uri).to.include(secret);
    expect(qrSvg).to.match(/^<svg[\s\S]*<\/svg>\s*$/);
    expect(qrSvg).to.not.match(/<script|on\w+=/i);

    expect(await confirmEnrollment(fx, p.id, userId, secret, '000000', meta())).to.equal(undefined);
    const notYet = await t.current.db.withPractice(p.id, { kind: 'system', id: 't' }, (trx) => trx('users').where({ id: userId }).first());
    expect(notYet.totp_secret).to.equal(null);

    const code = await generate({ secret, epoch });
    const recovery = await confirmEnrollment(fx, p.id, userId, secret, code, meta());
    expect(recovery).to.have.length(10);
    const row = await t.current.db.withPractice(p.id, { kind: 'system', id: 't' }, (trx) => trx('users').where({ id: userId }).first());
    expect(row.totp_secret.toString('latin1')).to.not.include(secret);

    // The code used to enrol cannot sign in again (replay); the next one can, once.
    expect(await verifySecondFactor(fx, p.id, userId, code, meta())).to.deep.equal({ ok: false });
    const next = await generate({ secret, epoch: epoch + 30 });
    const later = new Date(now.getTime() + 30_000);
    expect(await verifySecondFactor(fx, p.id, userId, next, meta(later))).to.deep.equal({ ok: true, via: 'totp' });
    expect(await verifySecondFactor(fx, p.id, userId, next, meta(later))).to.deep.equal({ ok: false });
  });

  it('a recovery code works once', async () => {
    const userId = await addUser();
    const { secret } = await startEnrollment('x@clinic.example', 'Enamel');
    const codes = (await confirmEnrollment(fx, p.id, userId, secret, await generate({ secret, epoch }), meta()))!;
    expect(await verifySecondFactor(fx, p.id, userId, codes[4]!, meta())).to.deep.equal({ ok: true, via: 'recovery_code' });
    expect(await verifySecondFactor(fx, p.id, userId, codes[4]!, meta())).to.deep.equal({ ok: false });
    expect(await verifySecondFactor(fx, p.id, userId, codes[5]!.toUpperCase(), meta())).to.deep.equal({ ok: true, via: 'recovery_code' });
    const actions = await t.current.db.withPractice(p.id, { kind: 'system', id: 't' }, (trx) => trx('audit_events').where({ resource_id: userId }).pluck('action'));
    expect(actions.filter((a: string) => a === 'login')).to.have.length(2);
    expect(actions).to.include('mfa_failure');
  });

  it('wrong codes lock the account at the documented count (with a lockout event and an alert); from one IP they block the address across accounts', async () => {
    const at = new Date(now.getTime() + 3_600_000);
    const users: { id: string; secret: string }[] = [];
    for (let i = 0; i < 6; i++) {
      const id = await addUser();
      const { secret } = await startEnrollment(`ip${i}@clinic.example`, 'Enamel');
      await confirmEnrollment(fx, p.id, id, secret, await generate({ secret, epoch }), meta());
      users.push({ id, secret });
    }
    const ip = '203.0.113.201';
    const attempt = (u: { id: string }, code: string, when: Date, from = ip) => verifySecondFactor(fx, p.id, u.id, code, { ip: from, requestId: randomUUID(), now: when });

    // Five wrong codes lock one account: the right code is then refused, and the lock is recorded.
    for (let i = 0; i < ACCOUNT_MAX_FAILURES; i++) expect(await attempt(users[0]!, '000000', at, '203.0.113.250')).to.deep.equal({ ok: false });
    const right = await generate({ secret: users[0]!.secret, epoch: Math.floor(at.getTime() / 1000) + 60 });
    expect(await attempt(users[0]!, right, new Date(at.getTime() + 60_000), '203.0.113.251')).to.deep.equal({ ok: false });
    const events = await t.current.db.withPractice(p.id, { kind: 'system', id: 't' }, (trx) => trx('audit_events').where({ resource_id: users[0]!.id }).pluck('action'));
    expect(events).to.include('lockout');
    const alerts = await t.current.db.withPractice(p.id, { kind: 'system', id: 't' }, (trx) => trx('security_alerts').where({ kind: 'signin_lockout' }).select('details'));
    expect(alerts.map((a: { details: { target_id: string } }) => a.details.target_id)).to.include(users[0]!.id);

    // Spread over accounts (never five on one), the address is blocked after IP_LIMITS.second_factor.max failures.
    const max = IP_LIMITS.second_factor.max;
    for (let i = 0; i < max; i++) await attempt(users[1 + (i % 5)]!, '111111', new Date(at.getTime() + i));
    const later = new Date(at.getTime() + 120_000);
    const code = await generate({ secret: users[1]!.secret, epoch: Math.floor(later.getTime() / 1000) });
    // The account is not locked (at most four failures each)…
    const rows = await t.current.db.withPractice(p.id, { kind: 'system', id: 't' }, (trx) => trx('users').whereIn('id', users.slice(1).map((u) => u.id)).pluck('failed_logins'));
    expect(Math.max(...rows)).to.be.lessThan(ACCOUNT_MAX_FAILURES);
    // …but the address is: even the right code is refused from it, and accepted from another.
    expect(await attempt(users[1]!, code, later)).to.deep.equal({ ok: false });
    expect(await attempt(users[1]!, code, later, '203.0.113.202')).to.deep.equal({ ok: true, via: 'totp' });
  });
});
