import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { generateSecret, generateURI, verify } from 'otplib';

/**
 * TOTP (RFC 6238 defaults: SHA-1, 6 digits, 30 s) so every authenticator app works. A code is
 * accepted once only: the caller stores the returned time step and passes it back as
 * `lastTimeStep`; a code from that step or an earlier one is refused (replay).
 */
export const TOTP_TOLERANCE_SECONDS = 30;

export function newTotpSecret(): string {
  return generateSecret();
}

export function totpUri(secret: string, account: string, issuer: string): string {
  return generateURI({ issuer, label: account, secret });
}

/** Returns the accepted time step, or undefined for a wrong, malformed or replayed code. */
export async function verifyTotp(secret: string, code: string, options: { lastTimeStep?: number | null; epochSeconds?: number } = {}): Promise<number | undefined> {
  const token = code.replace(/\s/g, '');
  // NOTE: otplib throws on malformed tokens; refuse them before asking it.
  if (!/^\d{6}$/.test(token)) return undefined;
  const result = await verify({
    secret,
    token,
    epochTolerance: TOTP_TOLERANCE_SECONDS,
    ...(options.epochSeconds !== undefined ? { epoch: options.epochSeconds } : {}),
    ...(options.lastTimeStep !== undefined && options.lastTimeStep !== null ? { afterTimeStep: options.lastTimeStep } : {}),
  } as Parameters<typeof verify>[0]);
  return result.valid && 'timeStep' in result ? result.timeStep : undefined;
}

const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';

function base32(bytes: Buffer): string {
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += BASE32[(value << (5 - bits)) & 31];
  return out;
}

/**
 * Ten single-use recovery codes of 120 random bits (24 base32 characters in four groups), shown
 * once; only their hashes are stored. At ≥ 112 bits an unsalted SHA-256 is an acceptable store
 * (ASVS V6.5.2): there is nothing to brute-force offline.
 */
export function newRecoveryCodes(): { codes: string[]; hashes: string[] } {
  const codes = Array.from({ length: 10 }, () => base32(randomBytes(15)).match(/.{6}/g)!.join('-'));
  return { codes, hashes: codes.map(hashRecoveryCode) };
}

export function hashRecoveryCode(code: string): string {
  return createHash('sha256').update(code.trim().toLowerCase().replace(/[^a-z2-7]/g, '')).digest('hex');
}

/** Index of the matching unused hash (constant-time compare of each), or -1. */
export function matchRecoveryCode(code: string, hashes: readonly string[]): number {
  const h = Buffer.from(hashRecoveryCode(code), 'hex');
  let found = -1;
  hashes.forEach((stored, i) => {
    const s = Buffer.from(stored, 'hex');
    if (s.length === h.length && timingSafeEqual(s, h) && found < 0) found = i;
  });
  return found;
}
