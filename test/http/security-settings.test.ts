import { useStaffApp, type StaffApp } from '../support/staff-app.js';
import { expect } from 'chai';
import { generate } from 'otplib';
import { updateSecuritySettings } from '../../src/services/practices/practice-settings.service.js';
import type { CryptoFixture } from '../support/crypto.js';
import { type BuiltPractice } from '../support/factories.js';
import { buildStaff, signIn, type BuiltStaff } from '../support/staff.js';
import type { StaffActor } from '../../src/policies/index.js';
import { ALL_PERMISSIONS } from '../../src/permissions.js';

describe('practice security settings: the owner’s, behind step-up, every change audited with old and new values', () => {
  const { t, clock, inPractice } = useStaffApp({ slug: 'sec-settings' }, (s) => ({ fx, p, built } = s));
  let fx: CryptoFixture;
  let p: BuiltPractice;
  let owner: BuiltStaff;
  let manager: BuiltStaff;
  let built: StaffApp['built'];
  const settings = () => inPractice((trx) => trx('practice_settings').first('session_idle_minutes', 'session_absolute_hours', 'mfa_required_for_all', 'portal_link_days', 'export_volume_threshold', 'security_contact_user_id', 'audit_retention_years', 'access_report_names'));
  const VALID = { sessionIdleMinutes: '30', sessionAbsoluteHours: '12', mfaPolicy: 'everyone', portalLinkDays: '7', exportVolumeThreshold: '50', securityContactUserId: '', auditRetentionYears: '6', accessReport: 'names' };

  before(async () => {
    owner = await buildStaff(t.current, { keyring: fx.keyring, now: clock.now }, p, { owner: true, name: 'Olive Owner' });
    manager = await buildStaff(t.current, { keyring: fx.keyring, now: clock.now }, p, { roles: ['office_manager'], name: 'Max Manager' });
  });

  it('an office manager (settings.manage, not the owner) is refused like a missing page, and the refusal is audited', async () => {
    const m = await signIn(built.app, p.slug, manager, clock);
    const res = await m.agent.get(`/p/${p.slug}/settings/security`);
    expect(res.status).to.equal(404);
    expect(await t.current.owner('audit_events').where({ practice_id: p.id, actor_id: manager.id, action: 'permission_denied' })).to.not.have.length(0);
    expect((await m.agent.get(`/p/${p.slug}/home`)).text).to.not.include('Security settings');
  });

  it('opening the page asks for step-up once the sign-in is older than five minutes', async () => {
    const o = await signIn(built.app, p.slug, owner, clock);
    clock.advance(6 * 60_000);
    const res = await o.agent.get(`/p/${p.slug}/settings/security`);
    expect(res.status).to.equal(303);
    expect(res.headers.location).to.equal(`/p/${p.slug}/step-up?next=${encodeURIComponent(`/p/${p.slug}/settings/security`)}`);
    const stepUp = await o.form(String(res.headers.location));
    clock.advance(30_000);
    const ok = await o.agent.post(`/p/${p.slug}/step-up`).type('form').send({ _csrf: stepUp.token, password: 'enamel dentin pulp cementum', code: await generate({ secret: owner.secret!, epoch: Math.floor(clock.now() / 1000) }), next: `/p/${p.slug}/settings/security` });
    expect(ok.headers.location).to.equal(`/p/${p.slug}/settings/security`);
    expect((await o.agent.get(`/p/${p.slug}/settings/security`)).status).to.equal(200);
  });

  it('bad values: every error at once, next to its field; nothing saved', async () => {
    const o = await signIn(built.app, p.slug, owner, clock);
    const page = await o.form(`/p/${p.slug}/settings/security`);
    const before = await settings();
    const bad = await o.agent.post(`/p/${p.slug}/settings/security`).type('form').send({ ...VALID, _csrf: page.token, sessionIdleMinutes: '90', sessionAbsoluteHours: '24', auditRetentionYears: '3', exportVolumeThreshold: 'lots', securityContactUserId: 'not-an-id' });
    expect(bad.status).to.equal(400);
    for (const message of ['Sign out after 5 to 30 minutes', 'The longest session is 1 to 12 hours.', 'Audit events are kept 6 years at least', 'The export alert threshold is 5 to 10,000', 'Choose the security contact from the list.']) expect(bad.text).to.include(message);
    expect(bad.text).to.include('aria-describedby="sessionIdleMinutes-err"').and.include('value="90"');
    expect(await settings()).to.deep.equal(before);
    const stranger = await o.agent.post(`/p/${p.slug}/settings/security`).type('form').send({ ...VALID, _csrf: page.token, securityContactUserId: '00000000-0000-4000-8000-000000000999' });
    expect(stranger.status).to.equal(400);
    expect(stranger.text).to.include('active accounts');
    expect(await settings()).to.deep.equal(before);
  });

  it('saves, and audits each changed setting with its old and new value (numbers, yes/no, ids)', async () => {
    const o = await signIn(built.app, p.slug, owner, clock);
    const page = await o.form(`/p/${p.slug}/settings/security`);
    const res = await o.agent.post(`/p/${p.slug}/settings/security`).type('form').send({ ...VALID, _csrf: page.token, sessionIdleMinutes: '15', mfaPolicy: 'administrators', exportVolumeThreshold: '25', securityContactUserId: manager.id, auditRetentionYears: '8', accessReport: 'roles' });
    expect(res.status).to.equal(303);
    expect(await settings()).to.deep.equal({ session_idle_minutes: 15, session_absolute_hours: 12, mfa_required_for_all: false, portal_link_days: 7, export_volume_threshold: 25, security_contact_user_id: manager.id, audit_retention_years: 8, access_report_names: false });
    const changes = await t.current.owner('audit_events').where({ practice_id: p.id, action: 'settings_change', actor_id: owner.id }).pluck('details');
    expect(changes).to.have.deep.members([
      { setting: 'session_idle_minutes', from_value: 30, to_value: 15, step_up: true },
      { setting: 'mfa_required_for_all', from_value: true, to_value: false, step_up: true },
      { setting: 'export_volume_threshold', from_value: 50, to_value: 25, step_up: true },
      { setting: 'security_contact_user_id', from_value: null, to_value: manager.id, step_up: true },
      { setting: 'audit_retention_years', from_value: 6, to_value: 8, step_up: true },
      { setting: 'access_report_names', from_value: true, to_value: false, step_up: true },
    ]);
    const same = await o.agent.post(`/p/${p.slug}/settings/security`).type('form').send({ ...VALID, _csrf: page.token, sessionIdleMinutes: '15', mfaPolicy: 'administrators', exportVolumeThreshold: '25', securityContactUserId: manager.id, auditRetentionYears: '8', accessReport: 'roles' });
    expect(same.headers.location).to.include('saved=0');
    expect(await t.current.owner('audit_events').where({ practice_id: p.id, action: 'settings_change', actor_id: owner.id })).to.have.length(6);
    // The shorter idle limit applies at once: 16 minutes without activity ends a session.
    const m = await signIn(built.app, p.slug, manager, clock);
    clock.advance(16 * 60_000);
    expect((await m.agent.get(`/p/${p.slug}/home`)).headers.location).to.equal(`/p/${p.slug}/sign-in?ended=idle`);
    await inPractice((trx) => trx('practice_settings').update({ mfa_required_for_all: true, session_idle_minutes: 30, access_report_names: true }));
  });

  it('production refuses “MFA off”: the service says why and changes nothing; the database keeps the session limits', async () => {
    const actor: StaffActor = { kind: 'user', id: owner.id, practiceId: p.id, slug: p.slug, displayName: 'Olive Owner', permissions: new Set(ALL_PERMISSIONS), locations: 'all', isOwner: true, authAt: clock.now() };
    const before = await settings();
    const r = await updateSecuritySettings(t.current.db, actor, { sessionIdleMinutes: 30, sessionAbsoluteHours: 12, mfaRequiredForAll: false, portalLinkDays: 7, exportVolumeThreshold: 50, securityContactUserId: null, auditRetentionYears: 6, accessReportNames: true, baNoticeHours: null }, { ip: '127.0.0.1', requestId: 'req-production-1', now: new Date(clock.now()) }, { production: true });
    expect(r).to.deep.equal({ ok: false, error: 'Two-step sign-in is required for every account in production; it cannot be turned off for anyone.' });
    expect(await settings()).to.deep.equal(before);
    // The database keeps its limits too: sessions can only be shortened.
    expect(await inPractice((trx) => trx('practice_settings').update({ session_idle_minutes: 45 })).then(() => 'saved', (e: Error) => e.message)).to.include('check constraint');
  });
});
