import QRCode from 'qrcode';
import { audit } from '../audit/record.js';
import { PracticeCrypto } from '../crypto/encrypted-columns.js';
import { decryptField, encryptField, fieldKeyVersion } from '../crypto/field-cipher.js';
import type { Keyring } from '../crypto/keyring.js';
import type { Db } from '../db/tenant.js';
import type { Knex } from 'knex';
import { findUserById, markRecoveryCodeUsed, recordFailedSignIn, recordLogin, recordTotpStep, replaceRecoveryCodes, saveTotpEnrollment, unusedRecoveryCodes, userSecrets, type UserRow } from '../queries/users.queries.js';
import { raiseAlert } from '../alerts/alerts.js';
import { ACCOUNT_MAX_FAILURES, accountFailure, accountRefusing, countIpFailure, ipBlocked } from './throttle.js';
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

/**
 * SECURITY: a TOTP secret being enrolled waits in the session row until the user confirms a code,
 * so it is kept there as a field envelope (the practice's fields key, bound to this user and to the
 * session table) — never as plaintext at rest.
 */
const pendingPlace = (practiceId: string, userId: string) => ({ practiceId, table: 'http_sessions', column: 'enroll_secret', rowId: userId });

export function sealPendingSecret(d: MfaDeps, practiceId: string, userId: string, secret: string): Promise<string> {
  return d.db.withPractice(practiceId, { kind: 'user', id: userId }, async (trx) => {
    const { version, key } = await d.keyring.active(trx, practiceId, 'fields');
    return encryptField(key, version, Buffer.from(secret), pendingPlace(practiceId, userId)).toString('base64');
  });
}

export function openPendingSecret(d: MfaDeps, practiceId: string, userId: string, sealed: string): Promise<string> {
  return d.db.withPractice(practiceId, { kind: 'user', id: userId }, async (trx) => {
    const envelope = Buffer.from(sealed, 'base64');
    const key = await d.keyring.version(trx, practiceId, 'fields', fieldKeyVersion(envelope));
    return decryptField(key, envelope, pendingPlace(practiceId, userId)).toString();
  });
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
 * to show once, or undefined if the code was wrong. `signingIn`: the enrolment that follows the
 * password at sign-in completes the sign-in, so it is recorded as one (last sign-in, `login`).
 */
export async function confirmEnrollment(d: MfaDeps, practiceId: string, userId: string, secret: string, code: string, meta: RequestMeta, options: { signingIn?: boolean } = {}): Promise<string[] | undefined> {
  const step = await verifyTotp(secret, code, { epochSeconds: Math.floor(meta.now.getTime() / 1000) });
  return d.db.withPractice(practiceId, { kind: 'user', id: userId }, async (trx) => {
    const base = { practiceId, actor: { kind: 'user' as const, id: userId }, resource: { type: 'user' as const, id: userId }, ip: meta.ip, requestId: meta.requestId };
    if (step === undefined) {
      await audit.record(trx, { ...base, action: 'mfa_enroll', outcome: 'failed' });
      return undefined;
    }
    const sealed = await userSecrets.seal(new PracticeCrypto(d.keyring, trx, practiceId), userId, { totp_secret: secret });
    await saveTotpEnrollment(trx, userId, sealed, step, meta.now);
    const { codes, hashes } = newRecoveryCodes();
    await replaceRecoveryCodes(trx, practiceId, userId, hashes);
    await audit.record(trx, { ...base, action: 'mfa_enroll', outcome: 'allowed', details: { count: codes.length } });
    if (options.signingIn) {
      await recordLogin(trx, userId, meta.now);
      await audit.record(trx, { ...base, action: 'login', outcome: 'allowed' });
    }
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
  await recordTotpStep(trx, user.id, step);
  return true;
}

/**
 * The second step: a TOTP code (accepted once: the time step is stored) or an unused recovery
 * code (then marked used). SECURITY: failures count towards the same account lock as wrong
 * passwords (auth/throttle.ts), and per IP address across accounts (scope `second_factor`): a
 * blocked address is refused before any code is checked.
 */
export async function verifySecondFactor(d: MfaDeps, practiceId: string, userId: string, code: string, meta: RequestMeta): Promise<{ ok: true; via: 'totp' | 'recovery_code' } | { ok: false }> {
  const blocked = await ipBlocked(d.db.knex, 'second_factor', meta.ip, meta.now);
  const result = await d.db.withPractice(practiceId, { kind: 'user', id: userId }, async (trx): Promise<{ ok: true; via: 'totp' | 'recovery_code' } | { ok: false; counted: boolean }> => {
    const user = await findUserById(trx, userId);
    const base = { practiceId, actor: { kind: 'user' as const, id: userId }, resource: { type: 'user' as const, id: userId }, ip: meta.ip, requestId: meta.requestId };
    if (blocked || !user || user.status !== 'active' || !user.totp_secret || accountRefusing(user.locked_until, meta.now)) {
      await audit.record(trx, { ...base, action: 'mfa_failure', outcome: 'denied' });
      return { ok: false, counted: !blocked };
    }
    if (await acceptTotp(d, trx, practiceId, user, code, meta.now)) {
      await recordLogin(trx, userId, meta.now);
      await audit.record(trx, { ...base, action: 'mfa_success', outcome: 'allowed' });
      await audit.record(trx, { ...base, action: 'login', outcome: 'allowed' });
      return { ok: true, via: 'totp' };
    }
    const unused = await unusedRecoveryCodes(trx, userId);
    const i = matchRecoveryCode(code, unused.map((u) => u.code_hash));
    if (i >= 0) {
      await markRecoveryCodeUsed(trx, unused[i]!.id, meta.now);
      await recordLogin(trx, userId, meta.now);
      await audit.record(trx, { ...base, action: 'mfa_success', outcome: 'allowed', details: { count: unused.length - 1 } });
      await audit.record(trx, { ...base, action: 'login', outcome: 'allowed' });
      return { ok: true, via: 'recovery_code' };
    }
    const { failures, lockedUntil, lockedNow } = accountFailure(user.failed_logins, meta.now);
    // The growing delay applies to passwords; a wrong code only moves the count (and locks at the limit).
    await recordFailedSignIn(trx, userId, failures, failures >= ACCOUNT_MAX_FAILURES ? lockedUntil : user.locked_until);
    await audit.record(trx, { ...base, action: 'mfa_failure', outcome: 'denied', details: { count: failures } });
    if (lockedNow) {
      await audit.record(trx, { ...base, actor: { kind: 'system', id: 'signin' }, action: 'lockout', outcome: 'allowed', details: { count: failures } });
      await raiseAlert(trx, { practiceId, kind: 'signin_lockout', severity: 'warning', details: { target_type: 'user', target_id: userId, count: failures } });
    }
    return { ok: false, counted: true };
  });
  if (result.ok) return result;
  if (result.counted) await countIpFailure(d.db.knex, 'second_factor', meta.ip, meta.now);
  return { ok: false };
}
