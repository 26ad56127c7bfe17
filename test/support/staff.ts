import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import type { Express } from 'express';
import { generate } from 'otplib';
import { confirmEnrollment, startEnrollment } from '../../src/auth/mfa.service.js';
import { hashPassword } from '../../src/auth/password-hash.js';
import type { Keyring } from '../../src/crypto/keyring.js';
import { insertUser } from '../../src/queries/users.queries.js';
import { browser } from './browser.js';
import type { TestDatabase } from './db.js';
import type { BuiltPractice } from './factories.js';

export const STAFF_PASSWORD = 'enamel dentin pulp cementum';

export interface BuiltStaff {
  id: string;
  email: string;
  /** TOTP secret when enrolled. */
  secret?: string;
}

let hashed: Promise<string> | undefined;

/**
 * An active staff account holding the default roles named by key (e.g. 'front_desk'), assigned to
 * `locations` (default: every location of the practice), with TOTP enrolled when `mfa` (default:
 * on — privileged roles need it).
 */
export async function buildStaff(
  t: TestDatabase,
  deps: { keyring: Keyring; now: () => number },
  p: BuiltPractice,
  options: { roles?: string[]; owner?: boolean; locations?: string[]; mfa?: boolean; name?: string } = {},
): Promise<BuiltStaff> {
  const id = randomUUID();
  const email = `s-${id.slice(0, 8)}@clinic.example`;
  hashed ??= hashPassword(STAFF_PASSWORD);
  const passwordHash = await hashed;
  await t.db.withPractice(p.id, { kind: 'system', id: 'test' }, async (trx) => {
    await insertUser(trx, { id, practice_id: p.id, email, display_name: options.name ?? 'Staff Member', status: 'active', is_owner: options.owner ?? false, password_hash: passwordHash });
    const roles = options.roles?.length ? await trx('roles').whereIn('key', options.roles).select<{ id: string }[]>('id') : [];
    if (roles.length !== (options.roles?.length ?? 0)) throw new Error(`unknown role key in ${options.roles?.join(',')}`);
    if (roles.length) await trx('user_roles').insert(roles.map((r) => ({ practice_id: p.id, user_id: id, role_id: r.id })));
    const locations = options.locations ?? p.locationIds;
    if (locations.length) await trx('user_locations').insert(locations.map((location_id) => ({ practice_id: p.id, user_id: id, location_id })));
  });
  if (options.mfa === false) return { id, email };
  const { secret } = await startEnrollment(email, 'Enamel');
  const at = deps.now();
  await confirmEnrollment({ db: t.db, keyring: deps.keyring }, p.id, id, secret, await generate({ secret, epoch: Math.floor(at / 1000) }), { ip: '127.0.0.1', requestId: randomUUID(), now: new Date(at) });
  return { id, email, secret };
}

/**
 * Signs `staff` in through the real forms (password, then TOTP when enrolled) and returns the
 * cookie-keeping client. The clock moves 30 s first so the TOTP step is a fresh one.
 */
export async function signIn(app: Express, slug: string, staff: BuiltStaff, clock: { now: () => number; advance: (ms: number) => void }): Promise<ReturnType<typeof browser>> {
  clock.advance(30_000);
  const b = browser(app);
  const page = await b.form(`/p/${slug}/sign-in`);
  const first = await b.agent.post(`/p/${slug}/sign-in`).type('form').send({ _csrf: page.token, email: staff.email, password: STAFF_PASSWORD });
  if (staff.secret) {
    expect(first.headers.location).to.equal(`/p/${slug}/sign-in/code`);
    const codePage = await b.form(`/p/${slug}/sign-in/code`);
    const ok = await b.agent.post(`/p/${slug}/sign-in/code`).type('form').send({ _csrf: codePage.token, code: await generate({ secret: staff.secret, epoch: Math.floor(clock.now() / 1000) }) });
    expect(ok.headers.location).to.equal(`/p/${slug}/home`);
  } else {
    expect(first.headers.location).to.equal(`/p/${slug}/home`);
  }
  return b;
}

/** A controllable clock for tests (no sleeping). */
export function testClock(start = Date.now()): { now: () => number; advance: (ms: number) => void } {
  let t = start;
  return { now: () => t, advance: (ms) => (t += ms) };
}

/**
 * A link-creating POST and the page it redirects to (post/redirect/get): the links page showing
 * the new link once. An error answers the form directly (4xx) and is returned as it is.
 */
export async function followCreated(b: ReturnType<typeof browser>, post: { status: number; headers: Record<string, unknown>; text: string }): Promise<{ status: number; text: string }> {
  if (post.status !== 303) return post;
  const location = String(post.headers.location);
  if (!/\/patients\/[0-9a-f-]{36}\/links$/.test(location)) throw new Error(`link creation redirected to ${location}`);
  return b.agent.get(location);
}
