import { useStaffApp, type StaffApp } from '../support/staff-app.js';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import { smsSignature } from '../../src/controllers/messages.controller.js';
import { createLogger } from '../../src/config/logger.js';
import { deliverDue, MAX_ATTEMPTS, backoffMs } from '../../src/messaging/outbox.js';
import { HttpSmsTransport, SmsProviderError } from '../../src/messaging/transports.js';
import { buildTestApp } from '../support/app.js';
import { browser } from '../support/browser.js';
import type { CryptoFixture } from '../support/crypto.js';
import { buildPatient, type BuiltPractice } from '../support/factories.js';
import { MemoryTransport } from '../support/mail.js';
import { rememberPhi } from '../support/phi-scan.js';
import { buildStaff, signIn, type BuiltStaff, followCreated } from '../support/staff.js';

const TOKEN = 'test-auth-token-0123456789abcdef';
const PHONE = '(555) 010-3141';
const E164 = '+15550103141';

describe('messaging: links by email and SMS, TCPA consent and opt-outs, signed webhook, outbox status', () => {
  const { t, clock, inPractice } = useStaffApp({ slug: 'messaging-http', env: { SMS_AUTH_TOKEN: TOKEN } }, (s) => ({ fx, p, built } = s));
  const transport = new MemoryTransport();
  let fx: CryptoFixture;
  let p: BuiltPractice;
  let coordinator: BuiltStaff;
  let built: StaffApp['built'];
  const deliver = () => deliverDue({ db: t.current.db, keyring: fx.keyring, transport, logger: createLogger('silent') }, new Date(clock.now()));

  async function patient(consent: boolean): Promise<string> {
    const made = await buildPatient(t.current.db, fx.keyring, p, { phone: PHONE, email: 'patient-messages@example.org', dateOfBirth: '1970-02-03' });
    if (consent) await inPractice((trx) => trx('patients').where({ id: made.id }).update({ sms_consent_at: new Date(clock.now()), sms_consent_source: 'written' }));
    return made.id;
  }

  async function sendLink(patientId: string, send: 'email' | 'sms' | 'none') {
    const b = await signIn(built.app, p.slug, coordinator, clock);
    const page = await b.form(`/p/${p.slug}/patients/${patientId}/links`);
    const res = await followCreated(b, await b.agent.post(`/p/${p.slug}/patients/${patientId}/links`).type('form').send({ _csrf: page.token, tasks: 'uploads', send }));
    return { b, res };
  }

  async function inbound(params: Record<string, string>, signature?: string) {
    const url = new URL(`/hooks/sms/${p.slug}`, built.config.publicUrl).toString();
    const req = browser(built.app).agent.post(`/hooks/sms/${p.slug}`).type('form');
    return req.set('X-Twilio-Signature', signature ?? smsSignature(TOKEN, url, params)).send(params);
  }

  const optOuts = () => inPractice((trx) => trx('sms_opt_outs').select('opted_out', 'keyword'));

  before(async () => {
    rememberPhi(PHONE, E164, '5550103141', 'patient-messages@example.org');
    coordinator = await buildStaff(t.current, { keyring: fx.keyring, now: clock.now }, p, { roles: ['treatment_coordinator'] });
  });

  it('emails a link: the message names the practice and carries the link, nothing about the patient; staff see it sent', async () => {
    const id = await patient(false);
    const { b, res } = await sendLink(id, 'email');
    expect(res.status).to.equal(200);
    expect(res.text).to.include('queued to go out by email');
    expect(await deliver()).to.deep.equal({ sent: 1, retried: 0, failed: 0, suppressed: 0 });
    const mail = transport.sent.at(-1)!;
    expect(mail.to).to.equal('patient-messages@example.org');
    expect(mail.text).to.match(/\/l\/[A-Za-z0-9_-]{43}/).and.include(p.name);
    const links = await b.agent.get(`/p/${p.slug}/patients/${id}/links`);
    expect(links.text).to.include('email: sent');
  });

  it('texts only with recorded consent; without it the link is refused with a reason and nothing is created', async () => {
    const id = await patient(false);
    const { res } = await sendLink(id, 'sms');
    expect(res.status).to.equal(400);
    expect(res.text).to.include('No text-message consent is recorded');
    expect(await inPractice((trx) => trx('patient_links').where({ patient_id: id }))).to.have.length(0);
    expect(await inPractice((trx) => trx('outbox_messages').whereNotNull('link_id').where('channel', 'sms'))).to.have.length(0);

    const consenting = await patient(true);
    expect((await sendLink(consenting, 'sms')).res.status).to.equal(200);
    const before = transport.texts.length;
    expect((await deliver()).sent).to.equal(1);
    expect(transport.texts.length).to.equal(before + 1);
    expect(transport.texts.at(-1)!.to).to.equal(E164);
    expect(transport.texts.at(-1)!.text).to.include('Reply STOP to opt out');
  });

  it('the webhook refuses a bad or missing signature with 403 and changes nothing', async () => {
    expect((await inbound({ From: E164, Body: 'STOP' }, 'bm90IHRoZSBzaWduYXR1cmU=')).status).to.equal(403);
    const unsigned = await browser(built.app).agent.post(`/hooks/sms/${p.slug}`).type('form').send({ From: E164, Body: 'STOP' });
    expect(unsigned.status).to.equal(403);
    // Signed for other parameters than the ones sent: refused too.
    const url = new URL(`/hooks/sms/${p.slug}`, built.config.publicUrl).toString();
    expect((await inbound({ From: E164, Body: 'STOP' }, smsSignature(TOKEN, url, { From: E164, Body: 'HELLO' }))).status).to.equal(403);
    expect(await optOuts()).to.have.length(0);
    // Without a configured token nothing can be checked: every call is refused.
    const noToken = buildTestApp(t.current, {}, { keyring: fx.keyring, clock: clock.now });
    const signed = smsSignature(TOKEN, url, { From: E164, Body: 'STOP' });
    expect((await browser(noToken.app).agent.post(`/hooks/sms/${p.slug}`).type('form').set('X-Twilio-Signature', signed).send({ From: E164, Body: 'STOP' })).status).to.equal(403);
  });

  it('STOP opts the number out: a later send is recorded as suppressed and nothing goes out; HELP answers; START opts back in', async () => {
    const id = await patient(true);
    const help = await inbound({ From: E164, Body: 'help' });
    expect(help.status).to.equal(200);
    expect(help.headers['content-type']).to.include('text/xml');
    expect(help.text).to.include('(555) 010-9999').and.include('Reply STOP');

    // A message queued before the STOP arrives is not sent either.
    expect((await sendLink(id, 'sms')).res.status).to.equal(200);
    const stop = await inbound({ From: E164, Body: ' Stop ' });
    expect(stop.status).to.equal(200);
    expect(stop.text).to.include('no longer receive');
    expect(await optOuts()).to.deep.equal([{ opted_out: true, keyword: 'STOP' }]);
    const before = transport.texts.length;
    expect(await deliver()).to.deep.equal({ sent: 0, retried: 0, failed: 0, suppressed: 1 });

    const { b, res } = await sendLink(id, 'sms');
    expect(res.status).to.equal(200);
    expect(res.text).to.include('opted out of text messages');
    expect(await deliver()).to.deep.equal({ sent: 0, retried: 0, failed: 0, suppressed: 0 });
    expect(transport.texts.length, 'nothing sent to an opted-out number').to.equal(before);
    const suppressed = await inPractice((trx) => trx('outbox_messages').where({ status: 'suppressed' }).select('last_error'));
    expect(suppressed).to.deep.equal([{ last_error: 'opted_out' }, { last_error: 'opted_out' }]);
    const audited = await t.current.owner('audit_events').where({ practice_id: p.id, action: 'message_suppressed' }).select('actor_type', 'details');
    expect(audited.map((e: { actor_type: string }) => e.actor_type).sort()).to.deep.equal(['system', 'user']);
    expect((await b.agent.get(`/p/${p.slug}/patients/${id}/links`)).text).to.include('sms: suppressed (opted out)');
    expect(await t.current.owner('audit_events').where({ practice_id: p.id, action: 'sms_opt_out' })).to.have.length(1);

    // UNSTOP is a START word; the opt-out ends and sending works again.
    expect((await inbound({ From: E164, Body: 'UNSTOP' })).text).to.include('again');
    expect(await optOuts()).to.deep.equal([{ opted_out: false, keyword: 'UNSTOP' }]);
    expect((await sendLink(id, 'sms')).res.text).to.include('queued to go out by text message');
    expect((await deliver()).sent).to.equal(1);
    // Anything else gets an empty answer and changes nothing.
    expect((await inbound({ From: E164, Body: 'see you tuesday' })).text).to.equal('<?xml version="1.0" encoding="UTF-8"?><Response></Response>');
    for (const word of ['STOPALL', 'UNSUBSCRIBE', 'CANCEL', 'END', 'QUIT']) {
      await inbound({ From: E164, Body: 'START' });
      await inbound({ From: E164, Body: word });
      expect(await optOuts(), word).to.deep.equal([{ opted_out: true, keyword: word }]);
    }
  });

  it('the outbox retries a failing transport, gives up after the documented count, and staff see the status', async () => {
    await inbound({ From: E164, Body: 'START' });
    const id = await patient(true);
    expect((await sendLink(id, 'sms')).res.status).to.equal(200);
    transport.failNext = MAX_ATTEMPTS;
    let failed = 0;
    for (let i = 1; i <= MAX_ATTEMPTS; i++) {
      const r = await deliver();
      failed += r.failed;
      if (i < MAX_ATTEMPTS) expect(r.retried, `attempt ${i}`).to.equal(1);
      clock.advance(backoffMs(i));
    }
    expect(failed).to.equal(1);
    expect(await deliver(), 'given up: never tried again').to.deep.equal({ sent: 0, retried: 0, failed: 0, suppressed: 0 });
    const b = await signIn(built.app, p.slug, coordinator, clock);
    const links = await b.agent.get(`/p/${p.slug}/patients/${id}/links`);
    expect(links.text).to.include(`sms: failed (gave up after ${MAX_ATTEMPTS} tries: ECONNREFUSED)`);
    const page = await b.agent.get(`/p/${p.slug}/messages`);
    expect(page.status).to.equal(200);
    expect(page.text).to.include('failed').and.include('ECONNREFUSED').and.not.include(E164).and.not.include('patient-messages@example.org');
  });

  it('records consent from the patient form with its time; an unchanged answer keeps the original time; none clears it', async () => {
    const id = await patient(false);
    const owner = await buildStaff(t.current, { keyring: fx.keyring, now: clock.now }, p, { owner: true });
    const b = await signIn(built.app, p.slug, owner, clock);
    const edit = await b.form(`/p/${p.slug}/patients/${id}/edit`);
    const value = (name: string) => new RegExp(`name="${name}" value="([^"]*)"`).exec(edit.text)?.[1] ?? '';
    const base = { _csrf: edit.token, givenName: value('givenName'), familyName: value('familyName'), dateOfBirth: '02/03/1970', sex: 'female', phone: PHONE, preferredContact: 'sms', locationId: p.locationIds[0] };
    expect((await b.agent.post(`/p/${p.slug}/patients/${id}`).type('form').send({ ...base, smsConsent: 'verbal' })).status).to.equal(303);
    const first = await inPractice((trx) => trx('patients').where({ id }).first('sms_consent_at', 'sms_consent_source'));
    expect(first.sms_consent_source).to.equal('verbal');
    expect(first.sms_consent_at.getTime()).to.equal(clock.now());
    clock.advance(60_000);
    await b.agent.post(`/p/${p.slug}/patients/${id}`).type('form').send({ ...base, smsConsent: 'verbal' });
    expect((await inPractice((trx) => trx('patients').where({ id }).first('sms_consent_at'))).sms_consent_at.getTime()).to.equal(first.sms_consent_at.getTime());
    expect((await b.agent.post(`/p/${p.slug}/patients/${id}`).type('form').send({ ...base, smsConsent: 'maybe' })).status).to.equal(400);
    await b.agent.post(`/p/${p.slug}/patients/${id}`).type('form').send({ ...base, smsConsent: 'none' });
    expect(await inPractice((trx) => trx('patients').where({ id }).first('sms_consent_at', 'sms_consent_source'))).to.deep.equal({ sms_consent_at: null, sms_consent_source: null });
  });

  it('the Twilio-compatible transport posts To, From and Body with basic auth; a refusal is an error the outbox can store', async () => {
    const seen: { url: string; auth: string; body: string }[] = [];
    let status = 201;
    const server = createServer((req: IncomingMessage, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        seen.push({ url: req.url ?? '', auth: req.headers.authorization ?? '', body });
        res.writeHead(status, { 'content-type': 'application/json' }).end('{"sid":"SM1"}');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const sms = new HttpSmsTransport({ apiUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, accountSid: 'AC0123456789', authToken: TOKEN, from: '+15550100000' });
      await sms.sendSms({ id: '00000000-0000-4000-8000-000000000001', to: E164, text: 'Hello from the office' });
      expect(seen[0]!.url).to.equal('/2010-04-01/Accounts/AC0123456789/Messages.json');
      expect(seen[0]!.auth).to.equal(`Basic ${Buffer.from(`AC0123456789:${TOKEN}`).toString('base64')}`);
      expect(Object.fromEntries(new URLSearchParams(seen[0]!.body))).to.deep.equal({ To: E164, From: '+15550100000', Body: 'Hello from the office' });
      status = 503;
      const err = await sms.sendSms({ id: '00000000-0000-4000-8000-000000000002', to: E164, text: 'x' }).catch((e: unknown) => e);
      expect(err).to.be.instanceOf(SmsProviderError);
      expect((err as SmsProviderError).code).to.equal('HTTP_503');
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
