import { randomBytes } from 'node:crypto';
import { hash, verify } from '@node-rs/argon2';
import { normalizePassword } from './password-policy.js';

/**
 * argon2id with the OWASP parameters: m = 19 MiB (19456 KiB), t = 2, p = 1, 32-byte output,
 * random 16-byte salt, PHC string format. About 20–25 ms a hash on this machine.
 */
// NOTE: algorithm 2 is Algorithm.Argon2id (a const enum, which isolated modules cannot import).
export const ARGON2_OPTIONS = { algorithm: 2, memoryCost: 19_456, timeCost: 2, parallelism: 1, outputLen: 32 } as const;

export function hashPassword(password: string): Promise<string> {
  return hash(normalizePassword(password), ARGON2_OPTIONS);
}

export async function verifyPassword(stored: string, password: string): Promise<boolean> {
  try {
    return await verify(stored, normalizePassword(password));
  } catch {
    return false;
  }
}

/**
 * A hash of a random password, for the unknown-user path: verifying against it costs the same as
 * a real verification, so an unknown email and a wrong password take similar time.
 */
let dummy: Promise<string> | undefined;
export function dummyHash(): Promise<string> {
  dummy ??= hash(randomBytes(24).toString('hex'), ARGON2_OPTIONS);
  return dummy;
}
