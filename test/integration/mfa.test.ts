import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import { generate } from 'otplib';
import { confirmEnrollment, startEnrollment, verifySecondFactor } from '../../src/auth/mfa.service.js';
import { hashPassword } from '../../src/auth/password-hash.js';
import { insertUser } from '../../src/queries/users.queries.js';
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
});
