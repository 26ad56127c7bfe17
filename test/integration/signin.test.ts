import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import { hashPassword } from '../../src/auth/password-hash.js';
import { NEUTRAL_SIGNIN_MESSAGE, passwordStep, type SignInAttempt } from '../../src/auth/signin.service.js';
import { ACCOUNT_LOCK_MS as SIGNIN_LOCK_MS, ACCOUNT_MAX_FAILURES as SIGNIN_MAX_FAILURES, IP_LIMITS } from '../../src/auth/throttle.js';

const IP_MAX_FAILURES = IP_LIMITS.password.max;
import { listAlerts } from '../../src/queries/alerts.queries.js';
import { insertUser } from '../../src/queries/users.queries.js';
import { useTestDatabase } from '../support/db.js';
import { buildPractice, type BuiltPractice } from '../support/factories.js';

const PASSWORD = 'molar crown bridge veneer';

describe('sign-in: password step (throttling, lockout, neutral answers)', () => {
  const t = useTestDatabase();
  let p: BuiltPractice;
  let hash: string;
  let t0: number;

  before(async () => {
    p = await buildPractice(t.current.owner);
    hash = await hashPassword(PASSWORD);
    t0 = Date.parse('2026-11-23T09:00:00Z');
  });

  async function addUser(overrides: { status?: 'active' | 'deactivated' | 'invited'; is_owner?: boolean } = {}): Promise<{ id: string; email: string }> {
    const id = randomUUID();
    const email = `staff-${id.slice(0, 8)}@clinic.example`;
    await t.current.db.withPractice(p.id, { kind: 'system', id: 'test' }, (trx) =>
      insertUser(trx, { id, practice_id: p.id, email, display_name: 'Test Staff', status: overrides.status ?? 'active', is_owner: overrides.is_owner ?? false, password_hash: overrides.status === 'invited' ? null : hash }),
    );
    return { id, email };
  }

  const attempt = (email: string, password: string, at: number, ip = '198.51.100.10'): Promise<Awaited<ReturnType<typeof passwordStep>>> =>
    passwordStep(t.current.db, { practiceId: p.id, email, password, ip, requestId: randomUUID(), now: new Date(at), mfaRequiredForAll: false } satisfies SignInAttempt);

  it('accepts the right password (email case and spacing do not matter) and says what comes next', async () => {
    const u = await addUser({ is_owner: true });
    const r = await attempt(`  ${u.email.toUpperCase()} `, PASSWORD, t0);
    expect(r).to.deep.equal({ ok: true, userId: u.id, next: 'enroll' }); // owners must enrol MFA
  });

  it('unknown user, wrong password, deactivated and invited accounts get the identical answer after the same argon2 work', async () => {
    const active = await addUser();
    const off = await addUser({ status: 'deactivated' });
    const invited = await addUser({ status: 'invited' });
    const answers = [];
    const durations: number[] = [];
    for (const [email, pw] of [['nobody@clinic.example', PASSWORD], [active.email, 'wrong password here'], [off.email, PASSWORD], [invited.email, PASSWORD]] as const) {
      const s = performance.now();
      answers.push(await attempt(email, pw, t0, '198.51.100.20'));
      durations.push(performance.now() - s);
    }
    for (const a of answers) expect(a).to.deep.equal({ ok: false, message: NEUTRAL_SIGNIN_MESSAGE });
    // Every path ran an argon2id verification (~20 ms here), so none returns measurably early.
    for (const d of durations) expect(d).to.be.greaterThan(5);
  });

  it('delays after each failure, locks after the documented count, raises an alert, and recovers after the lock', async () => {
    const u = await addUser();
    let now = t0;
    for (let i = 1; i <= SIGNIN_MAX_FAILURES; i++) {
      expect((await attempt(u.email, `wrong ${i} password`, now)).ok).to.equal(false);
      now += 10_000; // past the growing delay (at most 8 s)
    }
    // Locked: even the right password is refused, with the same answer.
    expect(await attempt(u.email, PASSWORD, now)).to.deep.equal({ ok: false, message: NEUTRAL_SIGNIN_MESSAGE });
    const alerts = await t.current.db.withPractice(p.id, { kind: 'system', id: 'test' }, (trx) => listAlerts(trx, { state: 'open' }, 100));
    expect(alerts.map((a) => a.kind)).to.include('signin_lockout');
    const events = await t.current.db.withPractice(p.id, { kind: 'system', id: 'test' }, (trx) => trx('audit_events').where({ resource_id: u.id }).pluck('action'));
    expect(events.filter((e: string) => e === 'login_failed')).to.have.length(SIGNIN_MAX_FAILURES + 1);
    expect(events).to.include('lockout');
    // After the lock, the right password works again and the counter resets.
    expect((await attempt(u.email, PASSWORD, t0 + SIGNIN_MAX_FAILURES * 10_000 + SIGNIN_LOCK_MS + 1000)).ok).to.equal(true);
  });

  it('a growing delay: right password refused within the delay after a failure, accepted after it', async () => {
    const u = await addUser();
    expect((await attempt(u.email, 'wrong password once', t0)).ok).to.equal(false);
    expect((await attempt(u.email, PASSWORD, t0 + 500)).ok).to.equal(false);
    expect((await attempt(u.email, PASSWORD, t0 + 5_000)).ok).to.equal(true);
  });

  it('blocks an IP address after too many failures across accounts', async () => {
    const u = await addUser();
    const ip = '203.0.113.66';
    for (let i = 0; i < IP_MAX_FAILURES; i++) await attempt(`ghost${i}@clinic.example`, 'whatever password', t0 + i, ip);
    expect((await attempt(u.email, PASSWORD, t0 + 100, ip)).ok).to.equal(false);
    expect((await attempt(u.email, PASSWORD, t0 + 100, '203.0.113.67')).ok).to.equal(true);
  });
});
