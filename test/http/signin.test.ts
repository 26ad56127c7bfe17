import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import { generate } from 'otplib';
import request from 'supertest';
import { hashPassword } from '../../src/auth/password-hash.js';
import { insertUser } from '../../src/queries/users.queries.js';
import { buildTestApp } from '../support/app.js';
import { browser } from '../support/browser.js';
import { buildCryptoFixture, type CryptoFixture } from '../support/crypto.js';
import { useTestDatabase } from '../support/db.js';
import { buildPractice, type BuiltPractice } from '../support/factories.js';

const PASSWORD = 'incisor canine premolar molar';

describe('staff sign-in over HTTP', () => {
  const t = useTestDatabase();
  let fx: CryptoFixture;
  let p: BuiltPractice;
  let clock = Date.now();
  const now = (): number => clock;

  before(async () => {
    fx = await buildCryptoFixture(t.current);
    p = await buildPractice(t.current.owner, { slug: 'signin-http' });
    // NOTE: these tests exercise passwords and session limits with accounts that have no second
    // factor: an evaluation practice that relaxed MFA to administrators. The default is below.
    await t.current.db.withPractice(p.id, { kind: 'system', id: 'test' }, (trx) => trx('practice_settings').update({ mfa_required_for_all: false }));
  });
  after(() => fx?.cleanup());

  async function addUser(isOwner: boolean): Promise<{ id: string; email: string }> {
    const id = randomUUID();
    const email = `u-${id.slice(0, 8)}@clinic.example`;
    const hash = await hashPassword(PASSWORD);
    await t.current.db.withPractice(p.id, { kind: 'system', id: 'test' }, (trx) =>
      insertUser(trx, { id, practice_id: p.id, email, display_name: 'Dana Hygienist', status: 'active', is_owner: isOwner, password_hash: hash }),
    );
    return { id, email };
  }

  const app = () => buildTestApp(t.current, {}, { keyring: fx.keyring, clock: now }).app;

  it('owner: password, then MFA enrolment with a QR code, recovery codes, signed in — the session id changes at each step', async () => {
    const u = await addUser(true);
    const b = browser(app());
    const page = await b.form('/p/signin-http/sign-in');
    expect(page.status).to.equal(200);
    expect(page.text).to.include('type="password"');
    const step1 = await b.agent.post('/p/signin-http/sign-in').type('form').send({ _csrf: page.token, email: u.email, password: PASSWORD });
    expect(step1.status).to.equal(303);
    expect(step1.headers.location).to.equal('/p/signin-http/mfa/enroll');
    const sid1 = b.sid(step1);
    expect(sid1).to.be.a('string');

    // Any signed-in page is still out of reach: enrolment is the only way on.
    expect((await b.agent.get('/p/signin-http/home')).headers.location).to.equal('/p/signin-http/mfa/enroll');

    const enroll = await b.form('/p/signin-http/mfa/enroll');
    expect(enroll.text).to.match(/<img src="data:image\/png;base64,[A-Za-z0-9+/=]+"/);
    const secret = /<code class="secret">([A-Z2-7]+)<\/code>/.exec(enroll.text)![1]!;
    // The secret waits in the session row only as a ciphertext.
    const stored = (await t.current.app('http_sessions').select('sess')).map((r: { sess: unknown }) => JSON.stringify(r.sess)).join('\n');
    expect(stored).to.include('"enroll"');
    expect(stored).to.not.include(secret);
    const code = await generate({ secret, epoch: Math.floor(clock / 1000) });
    const done = await b.agent.post('/p/signin-http/mfa/enroll').type('form').send({ _csrf: enroll.token, code });
    expect(done.status).to.equal(200);
    expect(done.text).to.include('Save your recovery codes');
    const sid2 = b.sid(done);
    expect(sid2).to.be.a('string').and.not.equal(sid1);

    const home = await b.agent.get('/p/signin-http/home');
    expect(home.status).to.equal(200);
    expect(home.text).to.include('Welcome, Dana Hygienist');
    // The enrolment finished the sign-in: it is the account's last sign-in, audited as one.
    const row = await t.current.db.withPractice(p.id, { kind: 'system', id: 'test' }, (trx) => trx('users').where({ email: u.email }).first('id', 'last_login_at'));
    expect(row.last_login_at, 'last sign-in recorded').to.be.instanceOf(Date);
    expect(await t.current.owner('audit_events').where({ actor_id: row.id, action: 'login', outcome: 'allowed' })).to.have.length(1);
  });

  it('enrolled user: password then TOTP; the session id changes twice; a wrong code is refused', async () => {
    const u = await addUser(true);
    // Enrol directly through the service.
    const { startEnrollment, confirmEnrollment } = await import('../../src/auth/mfa.service.js');
    const { secret } = await startEnrollment(u.email, 'Enamel');
    await confirmEnrollment(fx, p.id, u.id, secret, await generate({ secret, epoch: Math.floor(clock / 1000) }), { ip: '127.0.0.1', requestId: randomUUID(), now: new Date(clock) });
    clock += 60_000;

    const b = browser(app());
    const page = await b.form('/p/signin-http/sign-in');
    const sid0 = b.sid(await b.agent.get('/p/signin-http/sign-in')) ?? 'none';
    const step1 = await b.agent.post('/p/signin-http/sign-in').type('form').send({ _csrf: page.token, email: u.email, password: PASSWORD });
    expect(step1.headers.location).to.equal('/p/signin-http/sign-in/code');
    const sid1 = b.sid(step1)!;
    const codePage = await b.form('/p/signin-http/sign-in/code');
    const wrong = await b.agent.post('/p/signin-http/sign-in/code').type('form').send({ _csrf: codePage.token, code: '000000' });
    expect(wrong.status, wrong.text.slice(0, 300)).to.equal(401);
    const ok = await b.agent.post('/p/signin-http/sign-in/code').type('form').send({ _csrf: codePage.token, code: await generate({ secret, epoch: Math.floor(clock / 1000) }) });
    expect(ok.status).to.equal(303);
    expect(ok.headers.location).to.equal('/p/signin-http/home');
    const sid2 = b.sid(ok)!;
    expect(new Set([sid0, sid1, sid2]).size).to.equal(3);
  });

  it('a POST without or with a wrong CSRF token is 403 and changes nothing', async () => {
    const u = await addUser(false);
    const b = browser(app());
    await b.form('/p/signin-http/sign-in');
    for (const token of [undefined, 'forged-token']) {
      const res = await b.agent.post('/p/signin-http/sign-in').type('form').send({ ...(token ? { _csrf: token } : {}), email: u.email, password: PASSWORD });
      expect(res.status).to.equal(403);
    }
    const failed = await t.current.db.withPractice(p.id, { kind: 'system', id: 't' }, (trx) => trx('audit_events').where({ resource_id: u.id }).count<{ count: string }[]>('* as count'));
    expect(Number(failed[0]!.count)).to.equal(0); // the sign-in never ran
    const home = await b.agent.get('/p/signin-http/home');
    expect(home.status).to.equal(303);
  });

  it('a failed sign-in gives the form again with a working token: the second try is not refused as forged', async () => {
    const u = await addUser(false);
    const b = browser(app());
    const page = await b.form('/p/signin-http/sign-in');
    clock += 20_000;
    const first = await b.agent.post('/p/signin-http/sign-in').type('form').send({ _csrf: page.token, email: u.email, password: 'a typo in the password' });
    expect(first.status).to.equal(401);
    const token = /name="_csrf" value="([^"]+)"/.exec(first.text)?.[1];
    expect(token, 'the re-rendered form carries a token').to.be.a('string').and.not.equal('');
    clock += 20_000;
    const second = await b.agent.post('/p/signin-http/sign-in').type('form').send({ _csrf: token, email: u.email, password: PASSWORD });
    expect(second.status).to.equal(303);
  });

  it('unknown user and wrong password give identical pages', async () => {
    const u = await addUser(false);
    const b = browser(app());
    const page = await b.form('/p/signin-http/sign-in');
    const a = await b.agent.post('/p/signin-http/sign-in').type('form').send({ _csrf: page.token, email: 'nobody@clinic.example', password: PASSWORD });
    clock += 20_000;
    const c = await b.agent.post('/p/signin-http/sign-in').type('form').send({ _csrf: page.token, email: u.email, password: 'not the password at all' });
    expect(a.status).to.equal(401);
    expect(c.status).to.equal(401);
    const strip = (html: string) => html.replace(/value="[^"]*"/g, '');
    expect(strip(a.text)).to.equal(strip(c.text));
  });

  async function signedIn(): Promise<{ b: ReturnType<typeof browser>; u: { id: string; email: string } }> {
    const u = await addUser(false); // no MFA needed for non-owners unless the practice says so
    const b = browser(app());
    const page = await b.form('/p/signin-http/sign-in');
    clock += 20_000;
    const res = await b.agent.post('/p/signin-http/sign-in').type('form').send({ _csrf: page.token, email: u.email, password: PASSWORD });
    expect(res.headers.location).to.equal('/p/signin-http/home');
    return { b, u };
  }

  it('the idle timeout ends a session (controllable clock), and the page says why', async () => {
    const { b } = await signedIn();
    clock += 29 * 60_000;
    expect((await b.agent.get('/p/signin-http/home')).status).to.equal(200);
    clock += 31 * 60_000;
    const res = await b.agent.get('/p/signin-http/home');
    expect(res.status).to.equal(303);
    expect(res.headers.location).to.equal('/p/signin-http/sign-in?ended=idle');
    const page = await b.agent.get(String(res.headers.location));
    expect(page.text).to.include('signed out after a period without activity');
    expect((await b.agent.get('/p/signin-http/home')).headers.location).to.equal('/p/signin-http/sign-in');
  });

  it('the absolute timeout ends a session even when it is active', async () => {
    const { b } = await signedIn();
    for (let i = 0; i < 25; i++) {
      clock += 29 * 60_000;
      const res = await b.agent.get('/p/signin-http/home');
      if (res.status !== 200) {
        expect(res.headers.location).to.equal('/p/signin-http/sign-in?ended=absolute');
        expect(i).to.equal(24); // 25 × 29 min > 12 h
        return;
      }
    }
    throw new Error('the session never reached its absolute limit');
  });

  it('deactivation ends an existing session on its next request', async () => {
    const { b, u } = await signedIn();
    await t.current.db.withPractice(p.id, { kind: 'system', id: 't' }, (trx) => trx('users').where({ id: u.id }).update({ status: 'deactivated' }));
    const res = await b.agent.get('/p/signin-http/home');
    expect(res.headers.location).to.equal('/p/signin-http/sign-in?ended=revoked');
  });

  it('sign-out destroys the server session, sends Clear-Site-Data, and needs a CSRF token', async () => {
    const { b, u } = await signedIn();
    const home = await b.form('/p/signin-http/home');
    expect((await b.agent.post('/p/signin-http/sign-out').type('form').send({})).status).to.equal(403);
    const out = await b.agent.post('/p/signin-http/sign-out').type('form').send({ _csrf: home.token });
    expect(out.status).to.equal(303);
    expect(out.headers['clear-site-data']).to.include('cookies');
    expect((await b.agent.get('/p/signin-http/home')).status).to.equal(303);
    const actions = await t.current.db.withPractice(p.id, { kind: 'system', id: 't' }, (trx) => trx('audit_events').where({ actor_id: u.id }).pluck('action'));
    expect(actions).to.include.members(['login', 'logout']);
  });

  it('the session cookie is HttpOnly and SameSite=Lax; over HTTPS it is __Host- and Secure', async () => {
    const plain = await request(app()).get('/p/signin-http/sign-in');
    const c1 = ([] as string[]).concat(plain.headers['set-cookie'] ?? []).join(';');
    expect(c1).to.match(/^enamel=/);
    expect(c1).to.include('HttpOnly');
    expect(c1).to.include('SameSite=Lax');
    const https = buildTestApp(t.current, { PUBLIC_URL: 'https://enamel.clinic.example', TRUST_PROXY: 'loopback' }, { keyring: fx.keyring, clock: now }).app;
    const secure = await request(https).get('/p/signin-http/sign-in').set('X-Forwarded-Proto', 'https');
    const c2 = ([] as string[]).concat(secure.headers['set-cookie'] ?? []).join(';');
    expect(c2).to.match(/^__Host-enamel=/);
    expect(c2).to.include('Secure');
    expect(c2).to.include('Path=/');
    expect(c2).to.not.include('Domain=');
  });
});

describe('MFA for every account (the default), relaxed only outside production', () => {
  const t = useTestDatabase();
  let fx: CryptoFixture;
  let p: BuiltPractice;
  let clock = Date.now();

  before(async () => {
    fx = await buildCryptoFixture(t.current);
    p = await buildPractice(t.current.owner, { slug: 'mfa-all' });
  });
  after(() => fx?.cleanup());

  async function frontDesk(): Promise<{ id: string; email: string }> {
    const id = randomUUID();
    const email = `s-${id.slice(0, 8)}@clinic.example`;
    await t.current.db.withPractice(p.id, { kind: 'system', id: 'test' }, async (trx) => {
      await insertUser(trx, { id, practice_id: p.id, email, display_name: 'Front Desk', status: 'active', is_owner: false, password_hash: await hashPassword(PASSWORD) });
      const role = await trx('roles').where({ key: 'front_desk' }).first('id');
      await trx('user_roles').insert({ practice_id: p.id, user_id: id, role_id: role.id });
    });
    return { id, email };
  }
  const setMfaForAll = (on: boolean) => t.current.db.withPractice(p.id, { kind: 'system', id: 'test' }, (trx) => trx('practice_settings').update({ mfa_required_for_all: on }));
  const app = () => buildTestApp(t.current, {}, { keyring: fx.keyring, clock: () => clock }).app;

  it('a new practice requires MFA for everyone (migration 19 default, and every existing practice by migration 20)', async () => {
    const row = await t.current.db.withPractice(p.id, { kind: 'system', id: 'test' }, (trx) => trx('practice_settings').first('mfa_required_for_all'));
    expect(row.mfa_required_for_all).to.equal(true);
  });

  it('a front-desk account without MFA is sent to enrolment after its password and reaches no other page', async () => {
    const u = await frontDesk();
    const b = browser(app());
    const page = await b.form('/p/mfa-all/sign-in');
    const res = await b.agent.post('/p/mfa-all/sign-in').type('form').send({ _csrf: page.token, email: u.email, password: PASSWORD });
    expect(res.headers.location).to.equal('/p/mfa-all/mfa/enroll');
    for (const path of ['/p/mfa-all/home', '/p/mfa-all/patients', '/p/mfa-all/account', '/p/mfa-all/account/mfa', '/p/mfa-all/step-up']) {
      expect((await b.agent.get(path)).headers.location, path).to.equal('/p/mfa-all/mfa/enroll');
    }
    const enroll = await b.form('/p/mfa-all/mfa/enroll');
    // A POST elsewhere is not signed in either.
    const post = await b.agent.post('/p/mfa-all/patients/search').type('form').send({ _csrf: enroll.token, lastName: 'Anyone' });
    expect(post.status).to.equal(303);
    expect(post.headers.location).to.equal('/p/mfa-all/sign-in');
    expect(enroll.text).to.include('Set up two-step sign-in');
    const secret = /<code class="secret">([A-Z2-7]+)<\/code>/.exec(enroll.text)![1]!;
    // A reload (or a second tab) offers the same key, so the one already scanned still works.
    const reloaded = await b.form('/p/mfa-all/mfa/enroll');
    expect(/<code class="secret">([A-Z2-7]+)<\/code>/.exec(reloaded.text)![1]).to.equal(secret);
    const done = await b.agent.post('/p/mfa-all/mfa/enroll').type('form').send({ _csrf: enroll.token, code: await generate({ secret, epoch: Math.floor(clock / 1000) }) });
    expect(done.text).to.include('Save your recovery codes');
    expect((await b.agent.get('/p/mfa-all/home')).status).to.equal(200);
  });

  it('relaxed (evaluation only): signed in without MFA; turning it back on sends the live session to enrolment', async () => {
    await setMfaForAll(false);
    const u = await frontDesk();
    const b = browser(app());
    const page = await b.form('/p/mfa-all/sign-in');
    const res = await b.agent.post('/p/mfa-all/sign-in').type('form').send({ _csrf: page.token, email: u.email, password: PASSWORD });
    expect(res.headers.location).to.equal('/p/mfa-all/home');
    expect((await b.agent.get('/p/mfa-all/home')).status).to.equal(200);
    await setMfaForAll(true);
    const next = await b.agent.get('/p/mfa-all/home');
    expect(next.headers.location).to.equal('/p/mfa-all/mfa/enroll');
    expect((await b.agent.get('/p/mfa-all/account')).headers.location).to.equal('/p/mfa-all/mfa/enroll');
  });

  it('step-up always asks for the second factor: an account without one cannot step up with its password, and is told to set it up', async () => {
    await setMfaForAll(false);
    const u = await frontDesk();
    const b = browser(app());
    const page = await b.form('/p/mfa-all/sign-in');
    await b.agent.post('/p/mfa-all/sign-in').type('form').send({ _csrf: page.token, email: u.email, password: PASSWORD });
    const stepUp = await b.form('/p/mfa-all/step-up?next=/p/mfa-all/account');
    expect(stepUp.text).to.include('has no two-step sign-in yet').and.include('/p/mfa-all/account/mfa');
    expect(stepUp.text, 'no password form to fill in vain').to.not.include('name="password"');
    const token = (await b.form('/p/mfa-all/account')).token;
    const tried = await b.agent.post('/p/mfa-all/step-up').type('form').send({ _csrf: token, password: PASSWORD, next: '/p/mfa-all/account' });
    expect(tried.status).to.equal(401);
    const events = await t.current.owner('audit_events').where({ practice_id: p.id, actor_id: u.id, action: 'step_up' }).pluck('outcome');
    expect(events).to.deep.equal(['denied']);

    // Self-enrolment from the account page: the password, then a code from the new app.
    const account = await b.form('/p/mfa-all/account');
    expect(account.text).to.include('Set up two-step sign-in');
    const mfa = await b.form('/p/mfa-all/account/mfa');
    const secret = /<code class="secret">([A-Z2-7]+)<\/code>/.exec(mfa.text)![1]!;
    const wrongPassword = await b.agent.post('/p/mfa-all/account/mfa').type('form').send({ _csrf: mfa.token, password: 'not my password at all', code: await generate({ secret, epoch: Math.floor(clock / 1000) }) });
    expect(wrongPassword.status).to.equal(400);
    const ok = await b.agent.post('/p/mfa-all/account/mfa').type('form').send({ _csrf: mfa.token, password: PASSWORD, code: await generate({ secret, epoch: Math.floor(clock / 1000) }) });
    expect(ok.status).to.equal(200);
    expect(ok.text).to.include('Save your recovery codes');
    // Re-enrolment (a new phone) needs a step-up with the old factor first.
    clock += 6 * 60_000;
    const again = await b.agent.get('/p/mfa-all/account/mfa');
    expect(again.status).to.equal(303);
    expect(again.headers.location).to.match(/^\/p\/mfa-all\/step-up\?next=/);
    clock += 30_000;
    const stepUp2 = await b.form(String(again.headers.location));
    const confirmed = await b.agent.post('/p/mfa-all/step-up').type('form').send({ _csrf: stepUp2.token, password: PASSWORD, code: await generate({ secret, epoch: Math.floor(clock / 1000) }), next: '/p/mfa-all/account/mfa' });
    expect(confirmed.headers.location).to.equal('/p/mfa-all/account/mfa');
    const replace = await b.form('/p/mfa-all/account/mfa');
    expect(replace.text).to.include('Replace your authenticator');
    const newSecret = /<code class="secret">([A-Z2-7]+)<\/code>/.exec(replace.text)![1]!;
    clock += 30_000;
    const replaced = await b.agent.post('/p/mfa-all/account/mfa').type('form').send({ _csrf: replace.token, code: await generate({ secret: newSecret, epoch: Math.floor(clock / 1000) }) });
    expect(replaced.text).to.include('Save your recovery codes');
    await setMfaForAll(true);
  });

  it('in production the session check requires MFA whatever the stored setting says (the settings page refuses to store “off”: security-settings.test.ts)', async () => {
    const { mfaRequiredForEveryone } = await import('../../src/auth/staff-auth.js');
    expect(mfaRequiredForEveryone({ mfa_required_for_all: false }, true)).to.equal(true);
    expect(mfaRequiredForEveryone({ mfa_required_for_all: false }, false)).to.equal(false);
    expect(mfaRequiredForEveryone(undefined, false), 'no settings row: the safe default').to.equal(true);
  });
});
