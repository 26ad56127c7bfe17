import { useStaffApp, type StaffApp } from '../support/staff-app.js';
import { expect } from 'chai';
import { createLogger } from '../../src/config/logger.js';
import { backoffMs, deliverDue, MAX_ATTEMPTS } from '../../src/messaging/outbox.js';
import { browser } from '../support/browser.js';
import type { CryptoFixture } from '../support/crypto.js';
import { type BuiltPractice } from '../support/factories.js';
import { MemoryTransport } from '../support/mail.js';
import { buildStaff, signIn, type BuiltStaff } from '../support/staff.js';

const NEW_PASSWORD = 'bicuspid veneer crown bridge';

describe('password reset by email (through the outbox)', () => {
  const { t, clock, inPractice } = useStaffApp({ slug: 'reset-http', name: 'Floss Boss Dental' }, (s) => ({ fx, p, built } = s));
  let fx: CryptoFixture;
  let p: BuiltPractice;
  let user: BuiltStaff;
  let built: StaffApp['built'];
  const mail = new MemoryTransport();
  const deliver = () => deliverDue({ db: t.current.db, keyring: fx.keyring, transport: mail, logger: createLogger('silent') }, new Date(clock.now()));

  async function ask(email: string) {
    const b = browser(built.app);
    const page = await b.form(`/p/${p.slug}/password-reset`);
    return b.agent.post(`/p/${p.slug}/password-reset`).type('form').send({ _csrf: page.token, email });
  }

  before(async () => {
    user = await buildStaff(t.current, { keyring: fx.keyring, now: clock.now }, p, { roles: ['hygienist'] });
  });

  it('answers the same for a known and an unknown address; only the known one gets a message, stored encrypted', async () => {
    const known = await ask(user.email);
    const unknown = await ask('nobody@clinic.example');
    expect(known.status).to.equal(200);
    expect(unknown.status).to.equal(200);
    const strip = (html: string) => html.replace(/value="[^"]*"/g, '');
    expect(strip(known.text)).to.equal(strip(unknown.text));
    const rows = await inPractice((trx) => trx('outbox_messages').select('to_address', 'params', 'template', 'status'));
    expect(rows).to.have.length(1);
    expect(rows[0].template).to.equal('staff_password_reset');
    expect(JSON.stringify(rows)).to.not.include(user.email.split('@')[0]!).and.not.include('password-reset/');
    expect(await t.current.owner('audit_events').where({ practice_id: p.id, action: 'password_reset', outcome: 'denied' })).to.have.length(1);
  });

  it('the emailed link sets a new password once, ends every session, and still needs the second factor', async () => {
    const session = await signIn(built.app, p.slug, user, clock);
    clock.advance(3 * 60_000);
    await ask(user.email);
    expect(await deliver()).to.deep.include({ sent: 2 }); // the previous test's message, then this one
    const message = mail.sent.at(-1)!;
    expect(message.to).to.equal(user.email);
    expect(message.subject).to.equal('Reset your Floss Boss Dental password');
    const link = /(http\S+\/password-reset\/[A-Za-z0-9_-]{43})/.exec(message.text)![1]!;
    const path = new URL(link).pathname;

    const b = browser(built.app);
    const form = await b.form(path);
    expect(form.text).to.include(user.email);
    const weak = await b.agent.post(path).type('form').send({ _csrf: form.token, password: 'Floss Boss Dental!!', confirm: 'Floss Boss Dental!!' });
    expect(weak.status).to.equal(400);
    const ok = await b.agent.post(path).type('form').send({ _csrf: form.token, password: NEW_PASSWORD, confirm: NEW_PASSWORD });
    expect(ok.status).to.equal(303);
    expect(ok.headers.location).to.equal(`/p/${p.slug}/sign-in?ended=reset`);
    expect((await b.agent.get(path)).status, 'single use').to.equal(410);
    expect((await session.agent.get(`/p/${p.slug}/home`)).status, 'old sessions end').to.equal(303);

    const again = browser(built.app);
    const sp = await again.form(`/p/${p.slug}/sign-in`);
    const first = await again.agent.post(`/p/${p.slug}/sign-in`).type('form').send({ _csrf: sp.token, email: user.email, password: NEW_PASSWORD });
    expect(first.headers.location, 'MFA is not bypassed').to.equal(`/p/${p.slug}/sign-in/code`);
    expect(JSON.stringify(built.logs)).to.not.include(path.split('/').pop()!);
    expect((await t.current.owner('audit_events').where({ practice_id: p.id, action: 'password_reset', outcome: 'allowed', actor_id: user.id })).length).to.equal(1);
  });

  it('a link expires after 30 minutes; a second request within two minutes sends nothing new', async () => {
    clock.advance(5 * 60_000);
    const before = mail.sent.length;
    await ask(user.email);
    await ask(user.email);
    await deliver();
    expect(mail.sent.length).to.equal(before + 1);
    const path = new URL(/(http\S+\/password-reset\/[A-Za-z0-9_-]{43})/.exec(mail.sent.at(-1)!.text)![1]!).pathname;
    clock.advance(31 * 60_000);
    expect((await browser(built.app).agent.get(path)).status).to.equal(410);
    expect((await browser(built.app).agent.get(`/p/${p.slug}/password-reset/not-a-token`)).status).to.equal(410);
  });

  it('the outbox retries with backoff and gives up after the last attempt', async () => {
    clock.advance(5 * 60_000);
    await ask(user.email);
    mail.failNext = 1;
    expect(await deliver()).to.deep.equal({ sent: 0, retried: 1, failed: 0, suppressed: 0 });
    expect(await deliver(), 'not before the backoff').to.deep.equal({ sent: 0, retried: 0, failed: 0, suppressed: 0 });
    clock.advance(backoffMs(1));
    expect(await deliver()).to.deep.equal({ sent: 1, retried: 0, failed: 0, suppressed: 0 });

    clock.advance(5 * 60_000);
    await ask(user.email);
    mail.failNext = MAX_ATTEMPTS;
    let failed = 0;
    for (let i = 1; i <= MAX_ATTEMPTS; i++) {
      failed += (await deliver()).failed;
      clock.advance(backoffMs(i));
    }
    expect(failed).to.equal(1);
    const last = await inPractice((trx) => trx('outbox_messages').orderBy('created_at', 'desc').first('status', 'attempts', 'last_error'));
    expect(last).to.deep.equal({ status: 'failed', attempts: MAX_ATTEMPTS, last_error: 'ECONNREFUSED' });
  });
});
