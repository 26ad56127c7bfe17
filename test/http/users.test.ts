import { useStaffApp, type StaffApp } from '../support/staff-app.js';
import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import { generate } from 'otplib';
import { browser } from '../support/browser.js';
import type { CryptoFixture } from '../support/crypto.js';
import { buildPatient, type BuiltPractice } from '../support/factories.js';
import { buildStaff, signIn, STAFF_PASSWORD, type BuiltStaff } from '../support/staff.js';

const NEW_PASSWORD = 'molar incisor gumline premolar';

describe('users: invitations, access changes, deactivation, sessions, MFA reset', () => {
  const { t, clock, inPractice } = useStaffApp({ slug: 'users-http', name: 'Canine Corner Dental', locations: ['North', 'South'] }, (s) => ({ fx, p, built } = s));
  let fx: CryptoFixture;
  let p: BuiltPractice;
  let owner: BuiltStaff;
  let built: StaffApp['built'];
  const app = () => built.app;
  const staff = (options: Parameters<typeof buildStaff>[3]) => buildStaff(t.current, { keyring: fx.keyring, now: clock.now }, p, options);
  /** Reads inside the practice (tenant tables are behind forced RLS, even for the owner role). */
  const roleId = (key: string): Promise<string> => inPractice((trx) => trx('roles').where({ key }).first('id')).then((r: { id: string }) => r.id);
  const userRow = (id: string) => inPractice((trx) => trx('users').where({ id }).first('status', 'mfa_enrolled_at', 'totp_secret', 'mfa_reset_at'));
  const audits = (action: string, resourceId?: string) =>
    t.current.owner('audit_events').where({ practice_id: p.id, action, ...(resourceId ? { resource_id: resourceId } : {}) }).select('outcome', 'actor_id', 'details', 'resource_id');

  before(async () => {
    owner = await staff({ owner: true, name: 'Olive Owner' });
  });

  it('the users page lists every account with roles, locations, MFA and last sign-in; front desk is refused with the not-found page and an audited denial', async () => {
    await staff({ roles: ['front_desk'], mfa: false, name: 'Fiona Desk', locations: [p.locationIds[0]!] });
    const b = await signIn(app(), p.slug, owner, clock);
    const page = await b.agent.get(`/p/${p.slug}/users`);
    expect(page.status).to.equal(200);
    expect(page.text).to.include('Fiona Desk').and.include('Front desk').and.include('North').and.include('Olive Owner').and.include('All locations');
    expect(page.text).to.match(/<td>OFF<\/td>/);

    const desk = await staff({ roles: ['front_desk'] });
    const d = await signIn(app(), p.slug, desk, clock);
    const denied = await d.agent.get(`/p/${p.slug}/users`);
    expect(denied.status).to.equal(404);
    expect(denied.text).to.include('Page not found').and.not.include('Fiona');
    const rows = await t.current.owner('audit_events').where({ practice_id: p.id, action: 'permission_denied', actor_id: desk.id }).select('details', 'outcome');
    expect(rows).to.have.length(1);
    expect(rows[0]).to.deep.include({ outcome: 'denied', details: { permission: 'users.manage' } });
  });

  it('invite → single-use link → password → sign-in; the link cannot be used twice and is not logged', async () => {
    const b = await signIn(built.app, p.slug, owner, clock);
    const form = await b.form(`/p/${p.slug}/users/new`);
    const hygienistRole = await roleId('hygienist');
    const created = await b.agent.post(`/p/${p.slug}/users`).type('form').send({ _csrf: form.token, displayName: 'Hana Hygienist', email: 'Hana@Clinic.Example', roleIds: hygienistRole, locationIds: p.locationIds[1] });
    expect(created.status).to.equal(201);
    const link = /(http[^<\s]+\/invitations\/[A-Za-z0-9_-]{43})/.exec(created.text)?.[1];
    expect(link, 'the invitation link is shown once').to.be.a('string');
    const path = new URL(link!).pathname;
    const token = path.split('/').pop()!;
    const stored = await inPractice((trx) => trx('user_invitations').select('token_hash'));
    expect(JSON.stringify(stored)).to.not.include(token);

    const guest = browser(built.app);
    const accept = await guest.form(path);
    expect(accept.text).to.include('hana@clinic.example');
    const weak = await guest.agent.post(path).type('form').send({ _csrf: accept.token, password: 'Canine Corner Dental 1', confirm: 'Canine Corner Dental 1' });
    expect(weak.status).to.equal(400);
    expect(weak.text).to.match(/practice/i);
    const mismatch = await guest.agent.post(path).type('form').send({ _csrf: accept.token, password: NEW_PASSWORD, confirm: NEW_PASSWORD + 'x' });
    expect(mismatch.status).to.equal(400);
    const ok = await guest.agent.post(path).type('form').send({ _csrf: accept.token, password: NEW_PASSWORD, confirm: NEW_PASSWORD });
    expect(ok.status).to.equal(303);
    expect(ok.headers.location).to.equal(`/p/${p.slug}/sign-in?ended=welcome`);
    const welcome = await guest.agent.get(String(ok.headers.location));
    expect(welcome.text, 'the address is filled in (from the session, not the URL)').to.include('value="hana@clinic.example"');
    expect((await guest.agent.get(String(ok.headers.location))).text, 'once').to.not.include('value="hana@clinic.example"');

    const again = await guest.agent.get(path);
    expect(again.status).to.equal(410);
    const replay = await guest.agent.post(path).type('form').send({ _csrf: accept.token, password: NEW_PASSWORD, confirm: NEW_PASSWORD });
    expect(replay.status).to.equal(410);

    const hana = browser(built.app);
    const signInPage = await hana.form(`/p/${p.slug}/sign-in`);
    const signed = await hana.agent.post(`/p/${p.slug}/sign-in`).type('form').send({ _csrf: signInPage.token, email: 'hana@clinic.example', password: NEW_PASSWORD });
    // Every account sets up two-step sign-in before anything else (the practice default).
    expect(signed.headers.location).to.equal(`/p/${p.slug}/mfa/enroll`);
    expect(JSON.stringify(built.logs)).to.not.include(token);
    expect((await audits('user_invite')).length).to.be.greaterThan(0);
  });

  it('an expired or forged invitation link shows the neutral page', async () => {
    const b = await signIn(app(), p.slug, owner, clock);
    const form = await b.form(`/p/${p.slug}/users/new`);
    const billing = await roleId('billing');
    const created = await b.agent.post(`/p/${p.slug}/users`).type('form').send({ _csrf: form.token, displayName: 'Bill Ing', email: 'bill@clinic.example', roleIds: billing, locationIds: p.locationIds[0]! });
    const path = new URL(/(http[^<\s]+\/invitations\/[A-Za-z0-9_-]{43})/.exec(created.text)![1]!).pathname;
    clock.advance(73 * 3_600_000);
    const g = browser(app());
    expect((await g.agent.get(path)).status).to.equal(410);
    expect((await g.agent.get(`/p/${p.slug}/invitations/${'A'.repeat(43)}`)).status).to.equal(410);
    expect((await g.agent.get(`/p/${p.slug}/invitations/short`)).status).to.equal(410);
  });

  it('invite form errors: no location, a bad email, no role, a taken email, a role one may not assign — 4xx, nothing created', async () => {
    const manager = await staff({ roles: ['office_manager'] });
    const b = await signIn(app(), p.slug, manager, clock);
    const form = await b.form(`/p/${p.slug}/users/new`);
    const hygienist = await roleId('hygienist');
    const before = await inPractice((trx) => trx('users').count<{ n: string }[]>({ n: '*' }));
    const post = (body: object) => b.agent.post(`/p/${p.slug}/users`).type('form').send({ _csrf: form.token, locationIds: p.locationIds[0]!, ...body });
    const noLocation = await b.agent.post(`/p/${p.slug}/users`).type('form').send({ _csrf: form.token, displayName: 'X', email: 'nowhere@clinic.example', roleIds: await roleId('billing') });
    expect(noLocation.status, 'an account with no location would find no patient').to.equal(400);
    expect(noLocation.text).to.include('Choose at least one location');
    const badEmail = await post({ displayName: 'X', email: 'not-an-email', roleIds: hygienist });
    expect(badEmail.status).to.equal(400);
    expect(badEmail.text).to.include('Enter a valid email address.');
    expect((await post({ displayName: 'X', email: 'x@clinic.example' })).text).to.include('Choose at least one role.');
    expect((await post({ displayName: 'X', email: owner.email, roleIds: hygienist })).text).to.include('already has that email');
    // The office manager lacks clinical permissions, so cannot hand out the hygienist role.
    const escalate = await post({ displayName: 'X', email: 'x@clinic.example', roleIds: hygienist });
    expect(escalate.status).to.equal(403);
    expect(escalate.text).to.include('grants permissions you do not hold');
    const malformed = await post({ displayName: 'X', email: 'y@clinic.example', roleIds: 'not-a-uuid' });
    expect(malformed.status).to.equal(400);
    const after = await inPractice((trx) => trx('users').count<{ n: string }[]>({ n: '*' }));
    expect(after).to.deep.equal(before);
  });

  it('a locked account shows as locked on the users page and the account page; an administrator can unlock it (step-up, audited)', async () => {
    const desk = await staff({ roles: ['front_desk'], name: 'Lola Locked' });
    const g = browser(app());
    const form = await g.form(`/p/${p.slug}/sign-in`);
    for (let i = 0; i < 5; i++) {
      await g.agent.post(`/p/${p.slug}/sign-in`).type('form').send({ _csrf: form.token, email: desk.email, password: `wrong password ${i}` });
      clock.advance(10_000);
    }
    const b = await signIn(app(), p.slug, owner, clock);
    expect((await b.agent.get(`/p/${p.slug}/users`)).text).to.include('sign-in locked until');
    const page = await b.form(`/p/${p.slug}/users/${desk.id}`);
    expect(page.text).to.include('Sign-in is locked until').and.include('Unlock sign-in');
    expect((await b.agent.post(`/p/${p.slug}/users/${desk.id}/unlock`).type('form').send({ _csrf: page.token })).status).to.equal(303);
    expect(await userRow(desk.id)).to.include({ status: 'active' });
    expect((await audits('user_unlock', desk.id)).map((a) => a.actor_id)).to.deep.equal([owner.id]);
    const again = await b.agent.post(`/p/${p.slug}/users/${desk.id}/unlock`).type('form').send({ _csrf: page.token });
    expect(again.status).to.equal(409);
    await signIn(app(), p.slug, desk, clock); // the right password works again at once
  });

  it('deactivation is a checklist: sessions end at once, the TOTP secret and recovery codes are destroyed, open invitations and links revoked, each step audited; reactivation means enrolling again', async () => {
    const desk = await staff({ roles: ['front_desk'] });
    const patient = await buildPatient(t.current.db, fx.keyring, p);
    const openLink = randomUUID();
    const invited = randomUUID();
    await inPractice(async (trx) => {
      await trx('patient_links').insert({ id: openLink, practice_id: p.id, patient_id: patient.id, tasks: ['uploads'], code_hash: 'c'.repeat(64), created_by: desk.id, expires_at: new Date(clock.now() + 86_400_000) });
      await trx('users').insert({ id: invited, practice_id: p.id, email: `inv-${invited.slice(0, 8)}@clinic.example`, display_name: 'Invited By Desk', status: 'invited', is_owner: false });
      await trx('user_invitations').insert({ practice_id: p.id, user_id: invited, token_hash: 'd'.repeat(64), created_by: desk.id, expires_at: new Date(clock.now() + 86_400_000) });
    });
    expect(await inPractice((trx) => trx('user_recovery_codes').where({ user_id: desk.id }))).to.have.length(10);
    const d = await signIn(app(), p.slug, desk, clock);
    expect((await d.agent.get(`/p/${p.slug}/home`)).status).to.equal(200);
    const b = await signIn(app(), p.slug, owner, clock);
    const page = await b.form(`/p/${p.slug}/users/${desk.id}`);
    const off = await b.agent.post(`/p/${p.slug}/users/${desk.id}/deactivate`).type('form').send({ _csrf: page.token });
    expect(off.status).to.equal(303);
    expect((await t.current.owner('http_sessions').whereRaw("sess->'staff'->>'userId' = ?", [desk.id])).length).to.equal(0);
    const after = await d.agent.get(`/p/${p.slug}/home`);
    expect(after.status).to.equal(303);
    expect(after.headers.location).to.equal(`/p/${p.slug}/sign-in`);
    const attempt = browser(app());
    const sp = await attempt.form(`/p/${p.slug}/sign-in`);
    expect((await attempt.agent.post(`/p/${p.slug}/sign-in`).type('form').send({ _csrf: sp.token, email: desk.email, password: STAFF_PASSWORD })).status).to.equal(401);

    // SECURITY: the second factor is gone from the database, not just switched off.
    expect(await inPractice((trx) => trx('users').where({ id: desk.id }).first('totp_secret', 'mfa_enrolled_at'))).to.deep.equal({ totp_secret: null, mfa_enrolled_at: null });
    expect(await inPractice((trx) => trx('user_recovery_codes').where({ user_id: desk.id }))).to.have.length(0);
    expect(await inPractice((trx) => trx('patient_links').where({ id: openLink }).first('revoked_at'))).to.not.deep.equal({ revoked_at: null });
    expect(await inPractice((trx) => trx('user_invitations').where({ user_id: invited }).first('revoked_at'))).to.not.deep.equal({ revoked_at: null });
    const steps = await t.current.owner('audit_events').where({ practice_id: p.id, actor_id: owner.id }).whereIn('action', ['user_deactivate', 'session_revoke', 'mfa_destroy', 'invitation_revoke', 'link_revoke']).pluck('action');
    expect(steps).to.have.members(['user_deactivate', 'session_revoke', 'mfa_destroy', 'invitation_revoke', 'link_revoke']);

    const again = await b.form(`/p/${p.slug}/users/${desk.id}`);
    expect(again.text).to.include('deactivated');
    expect((await b.agent.post(`/p/${p.slug}/users/${desk.id}/reactivate`).type('form').send({ _csrf: again.token })).status).to.equal(303);
    clock.advance(60_000);
    const back = browser(app());
    const form = await back.form(`/p/${p.slug}/sign-in`);
    const res = await back.agent.post(`/p/${p.slug}/sign-in`).type('form').send({ _csrf: form.token, email: desk.email, password: STAFF_PASSWORD });
    expect(res.headers.location, 'the old authenticator no longer works: enrol again').to.equal(`/p/${p.slug}/mfa/enroll`);
    expect((await audits('user_deactivate', desk.id))[0]).to.deep.include({ outcome: 'allowed', actor_id: owner.id });
    expect(await audits('user_reactivate', desk.id)).to.have.length(1);
  });

  it('an administrator ends all of a user\u2019s sessions', async () => {
    const desk = await staff({ roles: ['front_desk'] });
    const one = await signIn(app(), p.slug, desk, clock);
    const two = await signIn(app(), p.slug, desk, clock);
    const b = await signIn(app(), p.slug, owner, clock);
    const page = await b.form(`/p/${p.slug}/users/${desk.id}`);
    expect((await b.agent.post(`/p/${p.slug}/users/${desk.id}/sessions/end`).type('form').send({ _csrf: page.token })).status).to.equal(303);
    for (const s of [one, two]) expect((await s.agent.get(`/p/${p.slug}/home`)).status).to.equal(303);
    expect((await audits('session_revoke', desk.id))[0]!.details).to.deep.equal({ count: 2 });
  });

  it('an administrator ends every session but their own (step-up), audited', async () => {
    const desk = await staff({ roles: ['front_desk'] });
    const other = await signIn(app(), p.slug, desk, clock);
    const b = await signIn(app(), p.slug, owner, clock);
    const page = await b.form(`/p/${p.slug}/users`);
    const res = await b.agent.post(`/p/${p.slug}/users/sessions/end`).type('form').send({ _csrf: page.token });
    expect(res.status).to.equal(303);
    expect(res.headers.location).to.match(/\/users\?ended=[1-9]\d*$/);
    expect((await other.agent.get(`/p/${p.slug}/home`)).status).to.equal(303);
    expect((await b.agent.get(`/p/${p.slug}/users`)).status, 'the administrator stays signed in').to.equal(200);
    const rows = await t.current.owner('audit_events').where({ practice_id: p.id, action: 'session_revoke', resource_type: 'session' }).select('actor_id');
    expect(rows).to.deep.equal([{ actor_id: owner.id }]);
  });

  it('MFA reset needs the administrator\u2019s own step-up, then forces the user to enrol again', async () => {
    const hygienistUser = await staff({ roles: ['hygienist'] });
    const b = await signIn(app(), p.slug, owner, clock);
    clock.advance(6 * 60_000); // beyond the step-up window
    const page = await b.form(`/p/${p.slug}/users/${hygienistUser.id}`);
    const demanded = await b.agent.post(`/p/${p.slug}/users/${hygienistUser.id}/mfa/reset`).type('form').send({ _csrf: page.token });
    expect(demanded.status).to.equal(303);
    expect(demanded.headers.location).to.equal(`/p/${p.slug}/step-up?next=${encodeURIComponent(`/p/${p.slug}/users/${hygienistUser.id}`)}`);
    expect((await userRow(hygienistUser.id)).mfa_enrolled_at).to.not.equal(null);

    clock.advance(30_000);
    const step = await b.form(String(demanded.headers.location));
    const stepped = await b.agent.post(`/p/${p.slug}/step-up`).type('form').send({ _csrf: step.token, password: STAFF_PASSWORD, code: await generate({ secret: owner.secret!, epoch: Math.floor(clock.now() / 1000) }), next: `/p/${p.slug}/users/${hygienistUser.id}` });
    expect(stepped.status).to.equal(303);
    const page2 = await b.form(`/p/${p.slug}/users/${hygienistUser.id}`);
    expect((await b.agent.post(`/p/${p.slug}/users/${hygienistUser.id}/mfa/reset`).type('form').send({ _csrf: page2.token })).status).to.equal(303);
    const row = await userRow(hygienistUser.id);
    expect(row).to.deep.include({ mfa_enrolled_at: null, totp_secret: null });
    expect(row.mfa_reset_at).to.be.instanceOf(Date);

    // Hygienists need no MFA by default, but after a reset they must enrol before anything else.
    const h = browser(app());
    const sp = await h.form(`/p/${p.slug}/sign-in`);
    const next = await h.agent.post(`/p/${p.slug}/sign-in`).type('form').send({ _csrf: sp.token, email: hygienistUser.email, password: STAFF_PASSWORD });
    expect(next.headers.location).to.equal(`/p/${p.slug}/mfa/enroll`);
    expect((await audits('mfa_reset', hygienistUser.id))[0]).to.deep.include({ outcome: 'allowed', actor_id: owner.id, details: { step_up: true } });
  });

  it('an office manager cannot deactivate the owner; nobody deactivates themselves (not found + audited)', async () => {
    const manager = await staff({ roles: ['office_manager'] });
    const b = await signIn(app(), p.slug, manager, clock);
    const page = await b.form(`/p/${p.slug}/users/new`);
    const refused = await b.agent.post(`/p/${p.slug}/users/${owner.id}/deactivate`).type('form').send({ _csrf: page.token });
    expect(refused.status).to.equal(404);
    const self = await b.agent.post(`/p/${p.slug}/users/${manager.id}/deactivate`).type('form').send({ _csrf: page.token });
    expect(self.status).to.equal(404);
    expect((await userRow(owner.id)).status).to.equal('active');
    expect((await userRow(manager.id)).status).to.equal('active');
    const denials = await t.current.owner('audit_events').where({ practice_id: p.id, action: 'permission_denied', actor_id: manager.id }).select('resource_id');
    expect(denials.map((r: { resource_id: string }) => r.resource_id)).to.have.members([owner.id, manager.id]);
  });
});
