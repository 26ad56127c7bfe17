import type { Request } from 'express';
import { newEnrollment, openPendingSecret, sealPendingSecret, type MfaDeps } from '../auth/mfa.service.js';
import { totpUri } from '../auth/totp.js';
import type { Clock } from '../shared/types.js';

/** How long a secret shown for enrolment stays the one on offer (a reload shows the same QR code). */
export const PENDING_ENROLMENT_MS = 10 * 60_000;

/**
 * The TOTP secret on offer to this user for enrolment: the one already shown (a reload, a second
 * tab, coming back from the app) while it is recent, else a new one, kept in the session only as
 * a field envelope (mfa.service.ts). Returns the secret and its otpauth URI.
 */
export async function pendingEnrollment(d: MfaDeps & { clock: Clock }, req: Request, practiceId: string, userId: string, email: string): Promise<{ secret: string; uri: string }> {
  const pending = req.session.enroll;
  if (pending && pending.account === email && d.clock() - pending.startedAt < PENDING_ENROLMENT_MS) {
    const secret = await openPendingSecret(d, practiceId, userId, pending.secret).catch(() => undefined);
    if (secret) return { secret, uri: totpUri(secret, email, 'Enamel') };
  }
  const { secret, uri } = newEnrollment(email, 'Enamel');
  req.session.enroll = { secret: await sealPendingSecret(d, practiceId, userId, secret), account: email, startedAt: d.clock() };
  await new Promise<void>((resolve, reject) => req.session.save((err) => (err ? reject(err) : resolve())));
  return { secret, uri };
}
