import { useStaffApp, type StaffApp } from '../support/staff-app.js';
import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import { generate } from 'otplib';
import { PracticeCrypto } from '../../src/crypto/encrypted-columns.js';
import { planSecrets } from '../../src/queries/plans.queries.js';
import { createOperator } from '../../src/services/operators/operators.service.js';
import { browser } from '../support/browser.js';
import type { CryptoFixture } from '../support/crypto.js';
import { buildPatient, type BuiltPractice } from '../support/factories.js';
import { buildStaff, signIn, STAFF_PASSWORD, type BuiltStaff } from '../support/staff.js';

/**
 * The fields a re-rendered form marks, read from its HTML: each `field-error` element must be named
 * by the aria-describedby of the control it belongs to (or of the fieldset around a checkbox or
 * radio group), and that control must say it is invalid. Returns field name → message.
 */
export function errorsBesideFields(html: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of html.matchAll(/<(?:p|span) class="field-error" id="([^"]+)"[^>]*>([^<]*)</g)) {
    const [, id, message] = m;
    const owner = [...html.matchAll(/<(input|select|textarea|fieldset)\b([^>]*)>/g)].find((tag) => new RegExp(`aria-describedby="[^"]*\\b${id}\\b`).test(tag[2]!));
    expect(owner, `nothing names ${id} in aria-describedby`).to.not.equal(undefined);
    let name: string | undefined;
    if (owner![1] === 'fieldset') {
      const inside = html.slice(owner!.index!, html.indexOf('</fieldset>', owner!.index!));
      name = /name="([^"]+)"/.exec(inside)?.[1];
    } else {
      expect(owner![2], `${id}: the control says it is invalid`).to.include('aria-invalid="true"');
      name = /name="([^"]+)"/.exec(owner![2]!)?.[1];
    }
    expect(name, id).to.be.a('string');
    expect(message!.trim(), id).to.not.equal('');
    out[name!] = message!.trim();
  }
  return out;
}

const tokenOf = (html: string) => /name="_csrf" value="([^"]+)"/.exec(html)![1]!;

describe('forms: every error at once, beside its field; the page again submits without a reload', () => {
  const { t, clock, inPractice } = useStaffApp({ slug: 'form-errors' }, (s) => ({ fx, p, built } = s));
  let fx: CryptoFixture;
  let p: BuiltPractice;
  let owner: BuiltStaff;
  let built: StaffApp['built'];

  before(async () => {
    owner = await buildStaff(t.current, { keyring: fx.keyring, now: clock.now }, p, { owner: true });
  });

  /** A new platform operator, signed in to the console. */
  async function operatorSession(email: string): Promise<ReturnType<typeof browser>> {
    const op = await createOperator(t.current.db.knex, fx.keyring.provider, { email, displayName: 'Forms Op' });
    const o = browser(built.app);
    const signInPage = await o.form('/operator/sign-in');
    await o.agent.post('/operator/sign-in').type('form').send({ _csrf: signInPage.token, email, password: op.password, code: await generate({ secret: op.secret, epoch: Math.floor(clock.now() / 1000) }) });
    return o;
  }

  it('invite someone: name, email and roles marked together; the roles chosen stay chosen; fixed, it succeeds', async () => {
    const s = await signIn(built.app, p.slug, owner, clock);
    const page = await s.form(`/p/${p.slug}/users/new`);
    const locationId = p.locationIds[0]!;
    const bad = await s.agent.post(`/p/${p.slug}/users`).type('form').send({ _csrf: page.token, displayName: '', email: 'not-an-email', locationIds: locationId });
    expect(bad.status).to.equal(400);
    expect(errorsBesideFields(bad.text)).to.deep.equal({ displayName: 'Enter the person’s name.', email: 'Enter a valid email address.', roleIds: 'Choose at least one role.' });
    expect(bad.text).to.include('3 fields need attention; nothing was saved.');
    expect(bad.text, 'the location chosen stays chosen').to.match(new RegExp(`value="${locationId}" checked`));
    const billing = (await inPractice((trx) => trx('roles').where({ key: 'billing' }).first<{ id: string }>('id'))).id;
    const taken = await s.agent.post(`/p/${p.slug}/users`).type('form').send({ _csrf: tokenOf(bad.text), displayName: 'Owner Again', email: owner.email, roleIds: billing, locationIds: locationId });
    expect(taken.status).to.equal(400);
    expect(errorsBesideFields(taken.text)).to.deep.equal({ email: 'Someone in this practice already has that email address.' });
    const ok = await s.agent.post(`/p/${p.slug}/users`).type('form').send({ _csrf: tokenOf(taken.text), displayName: 'New Person', email: 'new.person@clinic.example', roleIds: billing, locationIds: locationId });
    expect(ok.status).to.equal(201);
  });

  it('a role: name and permissions marked; a taken name beside the name', async () => {
    const s = await signIn(built.app, p.slug, owner, clock);
    const page = await s.form(`/p/${p.slug}/roles/new`);
    const bad = await s.agent.post(`/p/${p.slug}/roles`).type('form').send({ _csrf: page.token, name: '', permissions: 'made.up' });
    expect(bad.status).to.equal(400);
    expect(errorsBesideFields(bad.text)).to.deep.equal({ name: 'Give the role a name.', permissions: 'Choose permissions from the list.' });
    const taken = await s.agent.post(`/p/${p.slug}/roles`).type('form').send({ _csrf: tokenOf(bad.text), name: 'Billing', permissions: 'patients.read' });
    expect(errorsBesideFields(taken.text)).to.deep.equal({ name: 'A role with that name already exists.' });
    const ok = await s.agent.post(`/p/${p.slug}/roles`).type('form').send({ _csrf: tokenOf(taken.text), name: 'Reception', permissions: 'patients.read' });
    expect(ok.status).to.equal(303);
  });

  it('a new patient: each missing or impossible value beside its field', async () => {
    const s = await signIn(built.app, p.slug, owner, clock);
    const page = await s.form(`/p/${p.slug}/patients/new`);
    const bad = await s.agent.post(`/p/${p.slug}/patients`).type('form').send({ _csrf: page.token, givenName: '', familyName: '', dateOfBirth: '02/30/1990', locationId: p.locationIds[0]! });
    expect(bad.status).to.equal(400);
    const errors = errorsBesideFields(bad.text);
    expect(errors).to.include.keys('givenName', 'familyName', 'dateOfBirth');
    expect(errors.dateOfBirth).to.include('MM/DD/YYYY');
  });

  it('a plan item: code, tooth, description and fee marked at once, what was typed kept', async () => {
    const patient = await buildPatient(t.current.db, fx.keyring, p);
    const planId = randomUUID();
    await inPractice(async (trx) => trx('treatment_plans').insert({ id: planId, practice_id: p.id, patient_id: patient.id, status: 'draft', created_by: owner.id, ...(await planSecrets.seal(new PracticeCrypto(fx.keyring, trx, p.id), planId, { title: 'Plan' })) }));
    const s = await signIn(built.app, p.slug, owner, clock);
    const page = await s.form(`/p/${p.slug}/patients/${patient.id}/plans`);
    const bad = await s.agent.post(`/p/${p.slug}/plans/${planId}/items`).type('form').send({ _csrf: page.token, phase: '1', cdt: 'X1', tooth: '99', surfaces: 'O', description: '', fee: 'ten', insurance: '0' });
    expect(bad.status).to.equal(400);
    expect(Object.keys(errorsBesideFields(bad.text)).sort()).to.deep.equal(['cdt', 'description', 'fee', 'tooth']);
    expect(bad.text).to.include('value="X1"').and.include('value="99"').and.include('<details open>');
  });

  it('a document upload: the kind and the missing file beside their fields', async () => {
    const patient = await buildPatient(t.current.db, fx.keyring, p);
    const s = await signIn(built.app, p.slug, owner, clock);
    const page = await s.form(`/p/${p.slug}/patients/${patient.id}/documents`);
    const bad = await s.agent.post(`/p/${p.slug}/patients/${patient.id}/documents`).field('_csrf', page.token).field('kind', '').field('title', 'Kept title');
    expect(bad.status).to.equal(400);
    expect(Object.keys(errorsBesideFields(bad.text)).sort()).to.deep.equal(['file', 'kind']);
    expect(bad.text).to.include('value="Kept title"');
  });

  it('practice details: time zone and date format beside their fields', async () => {
    const s = await signIn(built.app, p.slug, owner, clock);
    const page = await s.form(`/p/${p.slug}/settings/practice`);
    const bad = await s.agent.post(`/p/${p.slug}/settings/practice`).type('form').send({ _csrf: page.token, phone: '(555) 010-1234', timeZone: 'Mars/Olympus', dateFormat: 'DD.MM' });
    expect(bad.status).to.equal(400);
    expect(Object.keys(errorsBesideFields(bad.text)).sort()).to.deep.equal(['dateFormat', 'timeZone']);
  });

  it('the operator’s new practice: every empty field marked; a taken address beside the address', async () => {
    const o = await operatorSession('forms-op@platform.example');
    const page = await o.form('/operator/practices/new');
    const bad = await o.agent.post('/operator/practices').type('form').send({ _csrf: page.token, name: '', slug: '', locationName: '', phone: '', ownerName: '', ownerEmail: '' });
    expect(bad.status).to.equal(400);
    expect(Object.keys(errorsBesideFields(bad.text)).sort()).to.deep.equal(['locationName', 'name', 'ownerEmail', 'ownerName', 'phone', 'slug']);
    const taken = await o.agent.post('/operator/practices').type('form').send({ _csrf: tokenOf(bad.text), name: 'Another', slug: p.slug, locationName: 'Main', phone: '(555) 010-2222', ownerName: 'Ann Other', ownerEmail: 'ann@other.example' });
    expect(taken.status).to.equal(409);
    expect(errorsBesideFields(taken.text)).to.deep.equal({ slug: 'That address is taken; choose another.' });
  });

  it('a step-up in the middle of a form brings the person back to it with what they typed: invitation, role, operator access, security settings', async () => {
    const s = await signIn(built.app, p.slug, owner, clock);
    const billing = (await inPractice((trx) => trx('roles').where({ key: 'billing' }).first<{ id: string }>('id'))).id;
    const cases: { form: string; post: string; back: string; body: Record<string, string>; shows: (string | RegExp)[] }[] = [
      { form: `/p/${p.slug}/users/new`, post: `/p/${p.slug}/users`, back: `/p/${p.slug}/users/new`, body: { displayName: 'Step Upwood', email: 'step.upwood@clinic.example', roleIds: billing }, shows: ['value="Step Upwood"', 'value="step.upwood@clinic.example"', new RegExp(`value="${billing}" checked`)] },
      { form: `/p/${p.slug}/roles/new`, post: `/p/${p.slug}/roles`, back: `/p/${p.slug}/roles/new`, body: { name: 'Sterilization', description: 'Keeps the instruments', permissions: 'patients.read' }, shows: ['value="Sterilization"', 'value="Keeps the instruments"', /value="patients.read" checked/] },
      { form: `/p/${p.slug}/operator-access`, post: `/p/${p.slug}/operator-access`, back: `/p/${p.slug}/operator-access`, body: { operatorEmail: 'helper@platform.example', caseReference: 'CASE-4711', hours: '8' }, shows: ['value="helper@platform.example"', 'value="CASE-4711"'] },
      { form: `/p/${p.slug}/settings/security`, post: `/p/${p.slug}/settings/security`, back: `/p/${p.slug}/settings/security`, body: { sessionIdleMinutes: '11', sessionAbsoluteHours: '7', mfaPolicy: 'everyone', portalLinkDays: '9', exportVolumeThreshold: '77', securityContactUserId: '', auditRetentionYears: '8', accessReport: 'roles' }, shows: ['value="11"', 'value="77"'] },
    ];
    for (const c of cases) {
      const page = await s.form(c.form);
      expect(page.status, c.form).to.equal(200);
      clock.advance(6 * 60_000); // the last confirmation is now too old
      const demanded = await s.agent.post(c.post).type('form').send({ _csrf: page.token, ...c.body });
      expect(demanded.status, c.post).to.equal(303);
      expect(String(demanded.headers.location), c.post).to.equal(`/p/${p.slug}/step-up?next=${encodeURIComponent(c.back)}`);
      for (const v of Object.values(c.body)) if (v.length > 3) expect(String(demanded.headers.location), 'nothing typed in the URL').to.not.include(encodeURIComponent(v));
      clock.advance(30_000);
      const step = await s.form(String(demanded.headers.location));
      const confirmed = await s.agent.post(`/p/${p.slug}/step-up`).type('form').send({ _csrf: step.token, password: STAFF_PASSWORD, code: await generate({ secret: owner.secret!, epoch: Math.floor(clock.now() / 1000) }), next: c.back });
      expect(confirmed.headers.location, c.post).to.equal(c.back);
      const back = await s.agent.get(c.back);
      expect(back.text, c.form).to.include('What you typed is back in the form');
      for (const shown of c.shows) {
        if (typeof shown === 'string') expect(back.text, c.form).to.include(shown);
        else expect(back.text, c.form).to.match(shown);
      }
      expect((await s.agent.get(c.back)).text, `${c.form}: taken once`).to.not.include('What you typed is back in the form');
    }
  });

  it('the other forms staff fill: password change, invitation, form editor, patient link, operator access, note, plan, search', async () => {
    const s = await signIn(built.app, p.slug, owner, clock);
    const patient = await buildPatient(t.current.db, fx.keyring, p);
    const post = async (page: string, action: string, body: Record<string, string>) => {
      const f = await s.form(page);
      const res = await s.agent.post(action).type('form').send({ _csrf: f.token, ...body });
      expect(res.status, action).to.be.within(400, 499);
      return errorsBesideFields(res.text);
    };
    expect(await post(`/p/${p.slug}/account`, `/p/${p.slug}/account/password`, { current: 'not my password', password: 'a new long password here' })).to.deep.equal({ current: 'Your current password is not right.' });
    expect(Object.keys(await post(`/p/${p.slug}/account`, `/p/${p.slug}/account/password`, { current: '', password: '' })).sort()).to.deep.equal(['current', 'password']);
    const editor = await post(`/p/${p.slug}/forms/new`, `/p/${p.slug}/forms`, { title: 'Sleep questions', notice: '', fields: 'Do you snore? | sometimes | required' });
    expect(Object.keys(editor)).to.deep.equal(['fields']);
    expect(await post(`/p/${p.slug}/forms/new`, `/p/${p.slug}/forms`, { title: '', notice: '', fields: 'Do you snore? | yes/no | required' })).to.have.keys('title');
    const fixed = await s.agent.post(`/p/${p.slug}/forms`).type('form').send({ _csrf: (await s.form(`/p/${p.slug}/forms/new`)).token, title: 'Sleep questions', notice: '', fields: 'Do you snore? | yes/no | required' });
    expect(fixed.status, 'the corrected new form saves').to.equal(303);
    expect(await post(`/p/${p.slug}/patients/${patient.id}/links`, `/p/${p.slug}/patients/${patient.id}/links`, { send: 'none' })).to.deep.equal({ tasks: 'Choose what the link is for.' });
    expect(await post(`/p/${p.slug}/patients/${patient.id}/links`, `/p/${p.slug}/patients/${patient.id}/links`, { tasks: 'uploads', send: 'email' })).to.have.keys('send');
    expect(Object.keys(await post(`/p/${p.slug}/operator-access`, `/p/${p.slug}/operator-access`, { operatorEmail: 'nope', caseReference: '', hours: '900' })).sort()).to.deep.equal(['caseReference', 'hours', 'operatorEmail']);
    expect(await post(`/p/${p.slug}/operator-access`, `/p/${p.slug}/operator-access`, { operatorEmail: 'nobody@platform.example', caseReference: 'C-1', hours: '2' })).to.deep.equal({ operatorEmail: 'There is no active operator with that email address.' });
    expect(await post(`/p/${p.slug}/patients/${patient.id}/notes`, `/p/${p.slug}/patients/${patient.id}/notes`, { body: '', action: 'draft' })).to.have.keys('body');
    expect(await post(`/p/${p.slug}/patients/${patient.id}/plans`, `/p/${p.slug}/patients/${patient.id}/plans`, { title: '' })).to.have.keys('title');
    expect(await post(`/p/${p.slug}/patients`, `/p/${p.slug}/patients/search`, { q: 'x' })).to.deep.equal({ q: 'Type at least two characters.' });
  });

  it('choosing a password from an invitation: the weak one and the mismatch beside their fields', async () => {
    const s = await signIn(built.app, p.slug, owner, clock);
    const page = await s.form(`/p/${p.slug}/users/new`);
    const billing = (await inPractice((trx) => trx('roles').where({ key: 'billing' }).first<{ id: string }>('id'))).id;
    const invited = await s.agent.post(`/p/${p.slug}/users`).type('form').send({ _csrf: page.token, displayName: 'Ivy Invitee', email: 'ivy@clinic.example', roleIds: billing, locationIds: p.locationIds[0]! });
    const link = new URL(/(http[^<\s"]+\/invitations\/[A-Za-z0-9_-]{43})/.exec(invited.text)![1]!).pathname;
    const guest = browser(built.app);
    const form = await guest.form(link);
    const mismatch = await guest.agent.post(link).type('form').send({ _csrf: form.token, password: 'correct horse battery staple', confirm: 'correct horse battery stapel' });
    expect(mismatch.status).to.equal(400);
    expect(errorsBesideFields(mismatch.text)).to.deep.equal({ confirm: 'The two passwords are not the same.' });
    const weak = await guest.agent.post(link).type('form').send({ _csrf: tokenOf(mismatch.text), password: 'short', confirm: 'short' });
    expect(Object.keys(errorsBesideFields(weak.text))).to.deep.equal(['password']);
  });

  it('the operator’s practice page: the tail, the confirmation and the retention settings beside their fields, what was typed kept', async () => {
    const o = await operatorSession('forms-op2@platform.example');
    const page = await o.form(`/operator/practices/${p.id}`);
    const tail = await o.agent.post(`/operator/practices/${p.id}/terminate`).type('form').send({ _csrf: page.token, tailDays: '10', confirmSlug: 'wrong' });
    expect(tail.status).to.equal(400);
    expect(errorsBesideFields(tail.text)).to.deep.equal({ tailDays: 'The tail is at least 30 days.' });
    expect(tail.text).to.include('value="10"').and.include('value="wrong"');
    const confirm = await o.agent.post(`/operator/practices/${p.id}/terminate`).type('form').send({ _csrf: tokenOf(tail.text), tailDays: '45', confirmSlug: 'wrong' });
    expect(errorsBesideFields(confirm.text)).to.have.keys('confirmSlug');
    const retention = await o.agent.post(`/operator/practices/${p.id}/settings`).type('form').send({ _csrf: tokenOf(confirm.text), patientPurgeGraceDays: '30', inactiveAccountDays: '90', auditRetentionYears: '2' });
    expect(errorsBesideFields(retention.text)).to.have.keys('auditRetentionYears');
    expect((await t.current.owner('practices').where({ id: p.id }).first('status')).status, 'nothing terminated').to.equal('active');
  });

  it('the checker itself fails on an error nothing points to, or a control that does not say it is invalid', () => {
    expect(() => errorsBesideFields('<form><input name="a"><p class="field-error" id="a-err">Bad</p></form>')).to.throw(/nothing names a-err/);
    expect(() => errorsBesideFields('<form><input name="a" aria-describedby="a-err"><p class="field-error" id="a-err">Bad</p></form>')).to.throw(/says it is invalid/);
    expect(errorsBesideFields('<form><input name="a" aria-invalid="true" aria-describedby="a-hint a-err"><p class="field-error" id="a-err">Bad</p></form>')).to.deep.equal({ a: 'Bad' });
  });
});
