import { hkdfSync, randomBytes } from 'node:crypto';
import type { Request } from 'express';
import { gcmDecrypt, gcmEncrypt, IV_BYTES, randomIv, TAG_BYTES } from '../crypto/aead.js';

/**
 * What a person typed (or was shown once), kept for the next page of the same session: the form
 * a step-up interrupted (the break-glass reason, the audit filters), or a patient link created a
 * moment ago (shown once after the redirect). SECURITY: it never goes into a URL; in the session
 * row it is AES-256-GCM under a key derived from SESSION_SECRET (so a database dump alone does not
 * read it), bound to its purpose and to the session's person; it is taken once, and expires after
 * STASH_MAX_AGE_MS. One slot per session: a newer stash replaces an older one.
 */
export const STASH_MAX_AGE_MS = 10 * 60_000;

export interface StashSlot {
  purpose: string;
  at: number;
  sealed: string;
}

declare module 'express-session' {
  interface SessionData {
    /** One sealed value for the next page (auth/session-stash.ts). */
    stash?: StashSlot;
  }
}

export function stashKey(sessionSecret: string | undefined): Buffer {
  return sessionSecret ? Buffer.from(hkdfSync('sha256', sessionSecret, Buffer.alloc(0), 'enamel-session-stash', 32)) : randomBytes(32);
}

const KEY_SETTING = 'session stash key';

/** Called once by createApp: the key every request's stash is sealed with. */
export function setStashKey(app: { set(name: string, value: unknown): unknown }, key: Buffer): void {
  app.set(KEY_SETTING, key);
}

function keyOf(req: Request): Buffer {
  const key = req.app.get(KEY_SETTING) as Buffer | undefined;
  if (!key) throw new Error('the session stash key is not set (createApp)');
  return key;
}

/** The person the session belongs to: a stash never opens for another. */
function owner(req: Request): string {
  const s = req.session;
  return s.staff ? `staff:${s.staff.practiceId}:${s.staff.userId}` : s.operator ? `operator:${s.operator.operatorId}` : s.patient ? `patient:${s.patient.linkId}` : 'anonymous';
}

const aad = (purpose: string, who: string) => Buffer.from(`enamel-stash|${purpose}|${who}`);

export function putStash(req: Request, purpose: string, value: unknown, now: number): void {
  const iv = randomIv();
  const { ciphertext, tag } = gcmEncrypt(keyOf(req), iv, Buffer.from(JSON.stringify(value)), aad(purpose, owner(req)));
  req.session.stash = { purpose, at: now, sealed: Buffer.concat([iv, ciphertext, tag]).toString('base64') };
}

/** The stashed value for `purpose`, removed from the session; undefined when none, stale, or not this person's. */
export function takeStash<T>(req: Request, purpose: string, now: number): T | undefined {
  const slot = req.session?.stash;
  if (!slot || slot.purpose !== purpose) return undefined;
  req.session.stash = undefined;
  if (now - slot.at > STASH_MAX_AGE_MS) return undefined;
  const bytes = Buffer.from(slot.sealed, 'base64');
  if (bytes.length < IV_BYTES + TAG_BYTES) return undefined;
  try {
    const plain = gcmDecrypt(keyOf(req), bytes.subarray(0, IV_BYTES), bytes.subarray(IV_BYTES, bytes.length - TAG_BYTES), bytes.subarray(bytes.length - TAG_BYTES), aad(purpose, owner(req)), 'session stash');
    return JSON.parse(plain.toString('utf8')) as T;
  } catch {
    return undefined;
  }
}

/** The stash purpose of a form a step-up interrupted: its POST path. */
export const formStash = (postPath: string): string => `form:${postPath}`;
