import type { Knex } from 'knex';
import { buildTestApp } from './app.js';
import { buildCryptoFixture, type CryptoFixture } from './crypto.js';
import { useTestDatabase } from './db.js';
import { buildPractice, type BuiltPractice } from './factories.js';
import { testClock } from './staff.js';

/** What useStaffApp builds before the file's own hooks run. */
export interface StaffApp {
  fx: CryptoFixture;
  p: BuiltPractice;
  built: ReturnType<typeof buildTestApp>;
}

/**
 * The usual HTTP test file's setup in one call: a fresh database, one controllable clock (for the
 * app and the authenticator codes), the crypto fixture (keys, file store), one practice, and the real
 * app wired to them; cleaned up after the file. `ready` receives them in `before`, so a file keeps
 * its own short names:
 *
 *   let fx: CryptoFixture; let p: BuiltPractice; let built: StaffApp['built'];
 *   const { t, clock, inPractice } = useStaffApp({ slug: 'plans-http' }, (s) => ({ fx, p, built } = s));
 */
export function useStaffApp(options: { slug: string; name?: string; locations?: string[]; env?: NodeJS.ProcessEnv }, ready: (s: StaffApp) => void) {
  const t = useTestDatabase();
  const clock = testClock();
  let made: StaffApp | undefined;
  before(async () => {
    const fx = await buildCryptoFixture(t.current);
    const p = await buildPractice(t.current.owner, { slug: options.slug, ...(options.name ? { name: options.name } : {}), ...(options.locations ? { locations: options.locations } : {}) });
    made = { fx, p, built: buildTestApp(t.current, options.env ?? {}, { keyring: fx.keyring, clock: clock.now, files: fx.files }) };
    ready(made);
  });
  after(() => made?.fx.cleanup());
  /** Work in the practice's tenant context, as the test. */
  const inPractice = <T>(fn: (trx: Knex.Transaction) => Promise<T>): Promise<T> => t.current.db.withPractice(made!.p.id, { kind: 'system', id: 'test' }, fn);
  return { t, clock, inPractice };
}
