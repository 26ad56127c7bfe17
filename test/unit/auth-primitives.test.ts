import { expect } from 'chai';
import { generate } from 'otplib';
import { hashPassword, verifyPassword } from '../../src/auth/password-hash.js';
import { PASSWORD_MAX, checkPassword, commonPasswords } from '../../src/auth/password-policy.js';
import { matchRecoveryCode, newRecoveryCodes, newTotpSecret, totpUri, verifyTotp } from '../../src/auth/totp.js';

// RFC 6238 appendix B, SHA-1 seed "12345678901234567890" (base32 below).
const RFC_SECRET = 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ';
const RFC_VECTORS: [number, string][] = [
  [59, '94287082'],
  [1111111109, '07081804'],
  [1111111111, '14050471'],
  [1234567890, '89005924'],
  [2000000000, '69279037'],
  [20000000000, '65353130'],
];

describe('auth primitives', () => {
  describe('TOTP', () => {
    for (const [epoch, code] of RFC_VECTORS) {
      it(`RFC 6238 vector at T=${epoch}`, async () => {
        expect(await generate({ secret: RFC_SECRET, epoch, digits: 8 })).to.equal(code);
        // Our verifier (6 digits, the RFC default apps use) accepts the same code's last 6 digits.
        expect(await verifyTotp(RFC_SECRET, code.slice(2), { epochSeconds: epoch })).to.equal(Math.floor(epoch / 30));
      });
    }

    it('accepts a code once only (replay refused), and the next step again', async () => {
      const secret = newTotpSecret();
      const epoch = 1_800_000_000;
      const code = await generate({ secret, epoch });
      const step = await verifyTotp(secret, code, { epochSeconds: epoch });
      expect(step).to.equal(Math.floor(epoch / 30));
      expect(await verifyTotp(secret, code, { epochSeconds: epoch, lastTimeStep: step })).to.equal(undefined);
      const next = await generate({ secret, epoch: epoch + 30 });
      expect(await verifyTotp(secret, next, { epochSeconds: epoch + 30, lastTimeStep: step })).to.equal(step! + 1);
    });

    it('refuses wrong, expired and malformed codes without throwing', async () => {
      const secret = newTotpSecret();
      const epoch = 1_800_000_000;
      const code = await generate({ secret, epoch });
      expect(await verifyTotp(secret, code, { epochSeconds: epoch + 300 })).to.equal(undefined);
      for (const bad of ['', '12345', '1234567', 'abcdef', '12 34 5x', `${code}0`]) {
        expect(await verifyTotp(secret, bad, { epochSeconds: epoch }), bad).to.equal(undefined);
      }
      expect(await verifyTotp(secret, `${code.slice(0, 3)} ${code.slice(3)}`, { epochSeconds: epoch })).to.be.a('number');
    });

    it('builds an otpauth URI with the RFC defaults', () => {
      const uri = totpUri(RFC_SECRET, 'owner@demo.example', 'Enamel');
      expect(uri).to.match(/^otpauth:\/\/totp\//);
      expect(uri).to.include(`secret=${RFC_SECRET}`);
      expect(uri).to.not.match(/algorithm=SHA(256|512)/);
    });

    it('recovery codes: ten distinct, stored hashed, each matches once', () => {
      const { codes, hashes } = newRecoveryCodes();
      expect(new Set(codes).size).to.equal(10);
      for (const c of codes) expect(c).to.match(/^[a-z2-7]{6}(-[a-z2-7]{6}){3}$/); // 24 × 5 = 120 bits
      expect(hashes.some((h) => codes.some((c) => h.includes(c.replace(/-/g, ''))))).to.equal(false);
      const i = matchRecoveryCode(codes[3]!.toUpperCase(), hashes);
      expect(i).to.equal(3);
      const remaining = hashes.filter((_, j) => j !== i);
      expect(matchRecoveryCode(codes[3]!, remaining)).to.equal(-1);
      expect(matchRecoveryCode('not-a-code', hashes)).to.equal(-1);
    });
  });

  describe('password policy (NIST SP 800-63B)', () => {
    it('ships at least 10,000 common passwords', () => {
      expect(commonPasswords().size).to.be.greaterThan(10_000);
    });

    it('refuses short, common, repetitive and context passwords with the reason', () => {
      expect(checkPassword('short pass')).to.equal('too_short');
      expect(checkPassword('x'.repeat(PASSWORD_MAX + 1))).to.equal('too_long');
      expect(checkPassword('abcabcabcabcabc')).to.equal('repetitive');
      const aCommonLongOne = [...commonPasswords()].find((w) => w.length >= 12 && /^[a-z0-9]+$/.test(w))!;
      expect(checkPassword(aCommonLongOne)).to.equal('common');
      expect(checkPassword(aCommonLongOne.toUpperCase())).to.equal('common');
      expect(checkPassword('BrightSmiles forever 2026', { practiceName: 'Bright Smiles Dental' })).to.equal('context');
      expect(checkPassword('my jsmithson password rules', { email: 'jsmithson@clinic.example' })).to.equal('context');
    });

    it('accepts a long passphrase with no composition rules, spaces and Unicode allowed', () => {
      expect(checkPassword('correct horse battery staple')).to.equal(undefined);
      expect(checkPassword('ünïcödé pässphrâse wörks fine')).to.equal(undefined);
      expect(checkPassword('a'.repeat(10) + 'b'.repeat(54) + 'cdefgh')).to.equal(undefined); // > 64 chars
    });
  });

  describe('password hashing', () => {
    it('uses argon2id with the documented parameters and verifies (NFKC-normalised, never truncated)', async () => {
      const long = `${'long passphrase '.repeat(10)}end`;
      const stored = await hashPassword(long);
      expect(stored).to.match(/^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
      expect(await verifyPassword(stored, long)).to.equal(true);
      expect(await verifyPassword(stored, long.slice(0, -1))).to.equal(false);
      expect(await verifyPassword(stored, `${long}x`)).to.equal(false);
      const composed = await hashPassword('café au lait forever');
      expect(await verifyPassword(composed, 'cafe\u0301 au lait forever')).to.equal(true);
      expect(await verifyPassword('not a hash', 'anything')).to.equal(false);
    });
  });
});
