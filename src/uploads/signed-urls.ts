import { createHash, createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Short-lived signed file URLs: `/p/<slug>/files/<token>`, where the token carries the document id,
 * the variant, an expiry and a hash of the viewer's session id, signed with HMAC-SHA-256. A URL
 * copied to another browser, altered, or older than its lifetime is refused — and the route still
 * checks the viewer's permissions and audits every view and download.
 */
export const FILE_URL_TTL_MS = 5 * 60_000;
export type Variant = 'thumb' | 'view' | 'original';
const VARIANTS: readonly Variant[] = ['thumb', 'view', 'original'];

/** The signing key: derived from SESSION_SECRET (shared by replicas), or random per process in development. */
export function fileUrlKey(sessionSecret: string | undefined): Buffer {
  return sessionSecret ? Buffer.from(hkdfSync('sha256', sessionSecret, Buffer.alloc(0), 'enamel-file-url', 32)) : randomBytes(32);
}

const sidHash = (sid: string): string => createHash('sha256').update(sid).digest('base64url').slice(0, 16);

export function signFileUrl(key: Buffer, p: { docId: string; patientId: string; variant: Variant; sid: string; now: number }): string {
  const payload = `${p.docId}.${p.patientId}.${p.variant}.${(p.now + FILE_URL_TTL_MS).toString(36)}.${sidHash(p.sid)}`;
  const mac = createHmac('sha256', key).update(payload).digest('base64url');
  return `${Buffer.from(payload).toString('base64url')}.${mac}`;
}

export function verifyFileUrl(key: Buffer, token: string, sid: string, now: number): { docId: string; patientId: string; variant: Variant } | undefined {
  const m = /^([A-Za-z0-9_-]{20,300})\.([A-Za-z0-9_-]{43})$/.exec(token);
  if (!m) return undefined;
  const payload = Buffer.from(m[1]!, 'base64url').toString('utf8');
  const expected = createHmac('sha256', key).update(payload).digest();
  const given = Buffer.from(m[2]!, 'base64url');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
  const [docId, patientId, variant, exp, sh] = payload.split('.');
  if (!docId || !patientId || !VARIANTS.includes(variant as Variant) || !exp || sh !== sidHash(sid) || parseInt(exp, 36) < now) return undefined;
  return { docId, patientId, variant: variant as Variant };
}
