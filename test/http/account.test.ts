import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import { generate } from 'otplib';
import { confirmEnrollment, startEnrollment } from '../../src/auth/mfa.service.js';
import { hashPassword } from '../../src/auth/password-hash.js';
import { commonPasswords } from '../../src/auth/password-policy.js';
import { safeReturnPath } from '../../src/auth/staff-auth.js';
import { insertUser } from '../../src/queries/users.queries.js';
import { buildTestApp } from '../support/app.js';
import { browser } from '../support/browser.js';
import { buildCryptoFixture, type CryptoFixture } from '../support/crypto.js';
import { useTestDatabase } from '../support/db.js';
import { buildPractice, type BuiltPractice } from '../support/factories.js';

const PASSWORD = 'enamel dentin pulp cementum';

describe('account: password change and step-up', () => {
  const t = useTestDatabase();
  let fx: CryptoFixture;
  let p: BuiltPractice;
  let clock = Date.now();
  const now = (): number => clock;
  const app = () => buildTestApp(t.current, {}, { keyring: fx.keyring, clock: now }).app;

  before(async () => {
    fx = await buildCryptoFixture(t.current);
    p = await buildPractice(t.current.owner, { slug: 'account-http', name: 'Pearly Gates Dental' });
  });
  after(() => fx?.cleanup());

  /** A signed-in owner with TOTP; returns the browser and the secret. */
  async function signedInOwner() {
    const id = randomUUID();
    const email = `o-${id.slice(0, 8)}@clinic.example`;
    await t.current.db.withPractice(p.id, { kind: 'system', id: 'test' }, async (trx) =>
      insertUser(trx, { id, practice_id: p.id, email, display_name: 'Owner', status: 'active', is_owner: true, password_hash: await hashPassword(PASSWORD) }),
    );
    const { secret } = await startEnrollment(email, 'Enamel');
    await confirmEnrollment(fx, p.id, id, secret, await generate({ secret, epoch: Math.floor(clock / 1000) }), { ip: '127.0.0.1', requestId: randomUUID(), now: new Date(clock) });
    clock += 30_000;
    const b = browser(app());
    const page = await b.form('/p/account-http/sign-in');
    await b.agent.post('/p/account-http/sign-in').type('form').send({ _csrf: page.token, email, password: PASSWORD });
    const codePage = await b.form('/p/account-http/sign-in/code');
    const ok = await b.agent.post('/p/account-http/sign-in/code').type('form').send({ _csrf: codePage.token, code: await generate({ secret, epoch: Math.floor(clock / 1000) }) });
    expect(ok.headers.location).to.equal('/p/account-http/home');
    return { b, secret, id, email };
  }

  /** The same user signing in from another browser. */
  async function secondBrowser(email: string, secret: string): Promise<ReturnType<typeof browser>> {
    const other = browser(app());
    const page = await other.form('/p/account-http/sign-in');
    await other.agent.post('/p/account-http/sign-in').type('form').send({ _csrf: page.token, email, password: PASSWORD });
    const codePage = await other.form('/p/account-http/sign-in/code');
    await other.agent.post('/p/account-http/sign-in/code').type('form').send({ _csrf: codePage.token, code: await generate({ secret, epoch: Math.floor(clock / 1000) }) });
    return other;
  }

  it('step-up is demanded for an MFA change after a few minutes, and honoured after password + code', async () => {
    const { b, secret } = await signedInOwner();
    // Fresh sign-in: allowed at once.
    let acct = await b.form('/p/account-http/account');
    const fresh = await b.agent.post('/p/account-http/account/recovery-codes').type('form').send({ _csrf: acct.token });
    expect(fresh.status).to.equal(200);
    expect(fresh.text).to.include('recovery codes');

    clock += 6 * 60_000; // older than the step-up window (5 min), well inside the idle limit
    acct = await b.form('/p/account-http/account');
    const demanded = await b.agent.post('/p/account-http/account/recovery-codes').type('form').send({ _csrf: acct.token });
    expect(demanded.status).to.equal(303);
    expect(demanded.headers.location).to.equal(`/p/account-http/step-up?next=${encodeURIComponent('/p/account-http/account')}`);

    const step = await b.form(String(demanded.headers.location));
    expect(step.text).to.include('Confirm it is you');
    const wrong = await b.agent.post('/p/account-http/step-up').type('form').send({ _csrf: step.token, password: PASSWORD, code: '000000', next: '/p/account-http/account' });
    expect(wrong.status).to.equal(401);
    clock += 30_000;
    const ok = await b.agent.post('/p/account-http/step-up').type('form').send({ _csrf: step.token, password: PASSWORD, code: await generate({ secret, epoch: Math.floor(clock / 1000) }), next: '/p/account-http/account' });
    expect(ok.status).to.equal(303);
    expect(ok.headers.location).to.equal('/p/account-http/account');
    acct = await b.form('/p/account-http/account');
    const honoured = await b.agent.post('/p/account-http/account/recovery-codes').type('form').send({ _csrf: acct.token });
    expect(honoured.status).to.equal(200);
    expect(honoured.text).to.match(/[a-z2-7]{6}-[a-z2-7]{6}-[a-z2-7]{6}-[a-z2-7]{6}/);
  });

  it('password change: the current password is required; common and context passwords are refused with the reason', async () => {
    const { b } = await signedInOwner();
    const acct = await b.form('/p/account-http/account');
    const send = (current: string, password: string) => b.agent.post('/p/account-http/account/password').type('form').send({ _csrf: acct.token, current, password });
    const badCurrent = await send('not my password at all', 'a brand new long passphrase');
    expect(badCurrent.status).to.equal(400);
    expect(badCurrent.text).to.include('current password is not right');
    const context = await send(PASSWORD, 'pearly gates forever and ever');
    expect(context.text).to.include('practice name or your email');
    const common = [...commonPasswords()].find((w) => w.length >= 12 && /^[a-z]+$/.test(w))!;
    const refused = await send(PASSWORD, common);
    expect(refused.text).to.include('lists of common or breached passwords');
    const short = await send(PASSWORD, 'short one');
    expect(short.text).to.include('at least 12 characters');
  });

  it('password change ends the other sessions and keeps this one', async () => {
    const { b, email, secret } = await signedInOwner();
    // A second browser signs in as the same user.
    clock += 30_000;
    const other = await secondBrowser(email, secret);
    expect((await other.agent.get('/p/account-http/home')).status).to.equal(200);

    clock += 1000;
    const acct = await b.form('/p/account-http/account');
    const changed = await b.agent.post('/p/account-http/account/password').type('form').send({ _csrf: acct.token, current: PASSWORD, password: 'periodontal ligament orbit 42' });
    expect(changed.status).to.equal(200);
    expect(changed.text).to.include('Your password was changed');
    clock += 1000;
    expect((await b.agent.get('/p/account-http/home')).status).to.equal(200);
    expect((await other.agent.get('/p/account-http/home')).headers.location).to.equal('/p/account-http/sign-in?ended=revoked');
  });

  it('new recovery codes (an MFA change) offer to end the other sessions, and doing so ends them', async () => {
    const { b, secret, email } = await signedInOwner();
    clock += 30_000; // a fresh TOTP step for the second sign-in
    const other = await secondBrowser(email, secret);
    expect((await other.agent.get('/p/account-http/home')).status).to.equal(200);
    const acct = await b.form('/p/account-http/account');
    const codes = await b.agent.post('/p/account-http/account/recovery-codes').type('form').send({ _csrf: acct.token });
    expect(codes.text).to.include('signed in 1 other time(s)');
    const token = /name="_csrf" value="([^"]+)"/.exec(codes.text)![1]!;
    expect((await b.agent.post('/p/account-http/account/sessions/end').type('form').send({ _csrf: token, handle: 'others' })).status).to.equal(303);
    expect((await other.agent.get('/p/account-http/home')).status).to.equal(303);
    expect((await b.agent.get('/p/account-http/home')).status).to.equal(200);
  });

  it('step-up return paths stay inside the practice (no open redirect)', () => {
    expect(safeReturnPath('demo', '/p/demo/account')).to.equal('/p/demo/account');
    for (const bad of ['https://evil.example/', '//evil.example', '/p/other/account', '/p/demo/../x', '/p/demo/a?x=1', undefined, 42]) {
      expect(safeReturnPath('demo', bad), String(bad)).to.equal('/p/demo/home');
    }
  });

  it('lists the user\'s own sessions and ends another one, but never someone else\'s', async () => {
    const { b, email, secret } = await signedInOwner();
    clock += 30_000;
    const other = await secondBrowser(email, secret);
    const stranger = await signedInOwner(); // a different user of the same practice

    const acct = await b.form('/p/account-http/account');
    expect(acct.text.match(/this browser/g)).to.have.length(1);
    const handles = [...acct.text.matchAll(/name="handle" value="([0-9a-f]{24})"/g)].map((m) => m[1]!);
    expect(handles).to.have.length(1);

    // The stranger cannot end this user's session with its handle.
    const strangerAcct = await stranger.b.form('/p/account-http/account');
    const denied = await stranger.b.agent.post('/p/account-http/account/sessions/end').type('form').send({ _csrf: strangerAcct.token, handle: handles[0] });
    expect(denied.headers.location).to.equal('/p/account-http/account?ended=0');
    expect((await other.agent.get('/p/account-http/home')).status).to.equal(200);

    const ended = await b.agent.post('/p/account-http/account/sessions/end').type('form').send({ _csrf: acct.token, handle: handles[0] });
    expect(ended.headers.location).to.equal('/p/account-http/account?ended=1');
    expect((await other.agent.get('/p/account-http/home')).headers.location).to.equal('/p/account-http/sign-in');
    expect((await b.agent.get('/p/account-http/home')).status).to.equal(200);

    const bad = await b.agent.post('/p/account-http/account/sessions/end').type('form').send({ _csrf: acct.token, handle: "x' OR 1=1" });
    expect(bad.status).to.equal(400);
  });
});
