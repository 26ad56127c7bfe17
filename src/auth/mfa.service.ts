import QRCode from 'qrcode';
import { audit } from '../audit/record.js';
import { PracticeCrypto } from '../crypto/encrypted-columns.js';
import type { Keyring } from '../crypto/keyring.js';
import type { Db } from '../db/tenant.js';
import type { Knex } from 'knex';
import { findUserById, recordLogin, userSecrets, type UserRow } from '../queries/users.queries.js';
import { SIGNIN_LOCK_MS, SIGNIN_MAX_FAILURES } from './signin.service.js';
import { matchRecoveryCode, newRecoveryCodes, newTotpSecret, totpUri, verifyTotp } from './totp.js';

/**
 * TOTP enrolment and the second sign-in step. Secrets are stored only as encrypted fields;
 * recovery codes only as hashes. Every outcome is audited in the same transaction.
 */
export interface MfaDeps {
  db: Db;
  keyring: Keyring;
}

export interface RequestMeta {
  ip: string;
  requestId: string;
  now: Date;
}

/** A new TOTP secret and its otpauth URI (nothing saved yet). */
export function newEnrollment(account: string, issuer: string): { secret: string; uri: string } {
  const secret = newTotpSecret();
  return { secret, uri: totpUri(secret, account, issuer) };
}

/** The QR code of an otpauth URI as a PNG data: URL for an <img>, rendered on the server. */
export function qrDataUrl(uri: string): Promise<string> {
  return QRCode.toDataURL(uri, { margin: 2, width: 220 });
}

/** A new secret with its otpauth URI and a server-rendered SVG QR code (nothing saved yet). */
export async function startEnrollment(account: string, issuer: string): Promise<{ secret: string; uri: string; qrSvg: string }> {
  const { secret, uri } = newEnrollment(account, issuer);
  return { secret, uri, qrSvg: await QRCode.toString(uri, { type: 'svg', errorCorrectionLevel: 'M', margin: 2 }) };
}

/**
 * Saves the secret only after a valid code from the user's app; returns the ten recovery codes
 * to show once, or undefined if the code was wrong.
 */
export async function confirmEnrollment(d: MfaDeps, practiceId: string, userId: string, secret: string, code: string, meta: RequestMeta): Promise<string[] | undefined> {
  const step = await verifyTotp(secret, code, { epochSeconds: Math.floor(meta.now.getTime() / 1000) });
  return d.db.withPractice(practiceId, { kind: 'user', id: userId }, async (trx) => {
    const base = { practiceId, actor: { kind: 'user' as const, id: userId }, resource: { type: 'user' as const, id: userId }, ip: meta.ip, requestId: meta.requestId };
    if (step === undefined) {
      await audit.record(trx, { ...base, action: 'mfa_enroll', outcome: 'failed' });
      return undefined;
    }
    const sealed = await userSecrets.seal(new PracticeCrypto(d.keyring, trx, practiceId), userId, { totp_secret: secret });
    await trx('users').where({ id: userId }).update({ ...sealed, totp_last_step: step, mfa_enrolled_at: meta.now, updated_at: trx.fn.now() });
    const { codes, hashes } = newRecoveryCodes();
    await trx('user_recovery_codes').where({ user_id: userId }).delete();
    await trx('user_recovery_codes').insert(hashes.map((code_hash) => ({ practice_id: practiceId, user_id: userId, code_hash })));
    await audit.record(trx, { ...base, action: 'mfa_enroll', outcome: 'allowed', details: { count: codes.length } });
    return codes;
  });
}

/**
 * SECURITY: checks a TOTP code against the user's (decrypted) secret and, when it is good, stores
 * its time step so the same code is never accepted again. Returns whether it was accepted.
 */
export async function acceptTotp(d: MfaDeps, trx: Knex.Transaction, practiceId: string, user: Pick<UserRow, 'id' | 'totp_secret' | 'totp_last_step'>, code: string, now: Date): Promise<boolean> {
  if (!user.totp_secret) return false;
  const { totp_secret: secret } = await userSecrets.open(new PracticeCrypto(d.keyring, trx, practiceId), { id: user.id, totp_secret: user.totp_secret });
  const step = await verifyTotp(secret!, code, { lastTimeStep: user.totp_last_step === null ? null : Number(user.totp_last_step), epochSeconds: Math.floor(now.getTime() / 1000) });
  if (step === undefined) return false;
  await trx('users').where({ id: user.id }).update({ totp_last_step: step });
  return true;
}

/**
 * The second step: a TOTP code (accepted once: the time step is stored) or an unused recovery
 * code (then marked used). Failures count towards the same lock as wrong passwords.
 */
export async function verifySecondFactor(d: MfaDeps, practiceId: string, userId: string, code: string, meta: RequestMeta): Promise<{ ok: true; via: 'totp' | 'recovery_code' } | { ok: false }> {
  return d.db.withPractice(practiceId, { kind: 'user', id: userId }, async (trx) => {
    const user = await findUserById(trx, userId);
    const base = { practiceId, actor: { kind: 'user' as const, id: userId }, resource: { type: 'user' as const, id: userId }, ip: meta.ip, requestId: meta.requestId };
    if (!user || user.status !== 'active' || !user.totp_secret || (user.locked_until && user.locked_until > meta.now)) {
      await audit.record(trx, { ...base, action: 'mfa_failure', outcome: 'denied' });
      return { ok: false };
    }
    if (await acceptTotp(d, trx, practiceId, user, code, meta.now)) {
      await recordLogin(trx, userId, meta.now);
      await audit.record(trx, { ...base, action: 'mfa_success', outcome: 'allowed' });
      await audit.record(trx, { ...base, action: 'login', outcome: 'allowed' });
      return { ok: true, via: 'totp' };
    }
    const unused = await trx('user_recovery_codes').where({ user_id: userId }).whereNull('used_at').select<{ id: string; code_hash: string }[]>('id', 'code_hash');
    const i = matchRecoveryCode(code, unused.map((u) => u.code_hash));
    if (i >= 0) {
      await trx('user_recovery_codes').where({ id: unused[i]!.id }).update({ used_at: meta.now });
      await recordLogin(trx, userId, meta.now);
      await audit.record(trx, { ...base, action: 'mfa_success', outcome: 'allowed', details: { count: unused.length - 1 } });
      await audit.record(trx, { ...base, action: 'login', outcome: 'allowed' });
      return { ok: true, via: 'recovery_code' };
    }
    const failures = user.failed_logins + 1;
    await trx('users').where({ id: userId }).update({ failed_logins: failures, locked_until: failures >= SIGNIN_MAX_FAILURES ? new Date(meta.now.getTime() + SIGNIN_LOCK_MS) : user.locked_until });
    await audit.record(trx, { ...base, action: 'mfa_failure', outcome: 'denied', details: { count: failures } });
    return { ok: false };
  });
}
