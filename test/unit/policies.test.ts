import { expect } from 'chai';
import { ALL_PERMISSIONS, DEFAULT_ROLES, type Permission } from '../../src/permissions.js';
import { authorize, type StaffActor } from '../../src/policies/index.js';
import type { RoleRecord } from '../../src/policies/role.policy.js';
import type { UserRecord } from '../../src/policies/user.policy.js';

const PRACTICE = '00000000-0000-4000-8000-000000000001';
const OTHER_PRACTICE = '00000000-0000-4000-8000-000000000002';

function actorWith(permissions: readonly Permission[], extra: Partial<StaffActor> = {}): StaffActor {
  return { kind: 'user', id: '10000000-0000-4000-8000-000000000001', practiceId: PRACTICE, slug: 'p', displayName: 'A', permissions: new Set(permissions), locations: 'all', isOwner: false, authAt: 0, ...extra };
}

const colleague: UserRecord = { practiceId: PRACTICE, id: '10000000-0000-4000-8000-000000000002', isOwner: false };
const owner: UserRecord = { practiceId: PRACTICE, id: '10000000-0000-4000-8000-000000000003', isOwner: true };
const stranger: UserRecord = { practiceId: OTHER_PRACTICE, id: '10000000-0000-4000-8000-000000000004', isOwner: false };
const SOME_PATIENT = { practiceId: PRACTICE, id: '30000000-0000-4000-8000-000000000009', locationId: '40000000-0000-4000-8000-000000000009' };
const frontDeskRole: RoleRecord = { practiceId: PRACTICE, id: '20000000-0000-4000-8000-000000000001', isSystem: false, permissions: ['patients.read', 'patients.write'] };

/**
 * The role × action matrix: each policy action, for every default role, must be allowed exactly
 * when the role holds the permission the action documents (docs/SECURITY.md's table).
 */
const ACTIONS: { action: string; needs: Permission | readonly Permission[]; check: (a: StaffActor) => boolean }[] = [
  { action: 'user.index', needs: 'users.manage', check: (a) => authorize(a, 'user.index') },
  { action: 'user.invite', needs: 'users.manage', check: (a) => authorize(a, 'user.invite') },
  { action: 'user.show', needs: 'users.manage', check: (a) => authorize(a, 'user.show', colleague) },
  { action: 'user.update', needs: 'users.manage', check: (a) => authorize(a, 'user.update', colleague) },
  { action: 'user.deactivate', needs: 'users.manage', check: (a) => authorize(a, 'user.deactivate', colleague) },
  { action: 'user.reactivate', needs: 'users.manage', check: (a) => authorize(a, 'user.reactivate', colleague) },
  { action: 'user.endSessions', needs: 'users.manage', check: (a) => authorize(a, 'user.endSessions', colleague) },
  { action: 'user.resetMfa', needs: 'users.manage', check: (a) => authorize(a, 'user.resetMfa', colleague) },
  { action: 'role.index', needs: 'roles.manage', check: (a) => authorize(a, 'role.index') },
  { action: 'role.create', needs: 'roles.manage', check: (a) => authorize(a, 'role.create', { permissions: ['patients.read'] }) },
  { action: 'role.update', needs: 'roles.manage', check: (a) => authorize(a, 'role.update', frontDeskRole, { permissions: ['patients.read'] }) },
  { action: 'role.assign', needs: 'users.manage', check: (a) => authorize(a, 'role.assign', frontDeskRole) },
  { action: 'audit.search', needs: 'audit.read', check: (a) => authorize(a, 'audit.search') },
  { action: 'audit.export', needs: 'audit.read', check: (a) => authorize(a, 'audit.export') },
  { action: 'audit.patientAccess', needs: 'audit.read', check: (a) => authorize(a, 'audit.patientAccess') },
  { action: 'compliance.manageRetention', needs: 'compliance.manage', check: (a) => authorize(a, 'compliance.manageRetention', { practiceId: PRACTICE }) },
  { action: 'compliance.holdPractice', needs: 'compliance.manage', check: (a) => authorize(a, 'compliance.holdPractice') },
  { action: 'compliance.reviewAccess', needs: 'compliance.manage', check: (a) => authorize(a, 'compliance.reviewAccess') },
  { action: 'compliance.grantOperatorAccess', needs: 'compliance.manage', check: (a) => authorize(a, 'compliance.grantOperatorAccess') },
  { action: 'practice.exportData', needs: 'practice.export', check: (a) => authorize(a, 'practice.exportData') },
  { action: 'practice.manageRightsRegister', needs: 'rights.manage', check: (a) => authorize(a, 'practice.manageRightsRegister') },
  { action: 'patient.manageRights', needs: 'rights.manage', check: (a) => authorize(a, 'patient.manageRights', SOME_PATIENT) },
  { action: 'practice.readAlerts', needs: 'alerts.read', check: (a) => authorize(a, 'practice.readAlerts') },
  { action: 'practice.acknowledgeAlert', needs: 'alerts.read', check: (a) => authorize(a, 'practice.acknowledgeAlert', { practiceId: PRACTICE }) },
  { action: 'practice.editForms', needs: 'settings.manage', check: (a) => authorize(a, 'practice.editForms') },
  { action: 'practice.messageStatus', needs: 'portal.send', check: (a) => authorize(a, 'practice.messageStatus') },
  { action: 'practice.practiceDetails', needs: 'settings.manage', check: (a) => authorize(a, 'practice.practiceDetails') },
  // The patient actions, on a patient at a location every default role covers.
  ...(['show', 'update', 'uploadDocument', 'viewDocuments', 'readNotes', 'writeNotes', 'readPlans', 'writePlans', 'sendLink', 'reviewForms'] as const).map((verb) => ({
    action: `patient.${verb}`,
    needs: ({ show: 'patients.read', update: 'patients.write', uploadDocument: 'documents.upload', viewDocuments: ['documents.download', 'documents.office'], readNotes: 'clinical.read', writeNotes: 'clinical.write', readPlans: 'plans.read', writePlans: 'plans.write', sendLink: 'portal.send', reviewForms: 'forms.review' } as const)[verb],
    check: (a: StaffActor) => authorize(a, `patient.${verb}`, SOME_PATIENT, new Date()),
  })),
];

describe('policies: every default role × every guarded action', () => {
  for (const role of DEFAULT_ROLES) {
    it(`${role.name}: allowed exactly where the role holds the permission`, () => {
      const a = actorWith(role.permissions, { isOwner: role.key === 'owner' });
      const got = ACTIONS.map((x) => `${x.action}=${x.check(a)}`);
      const want = ACTIONS.map((x) => `${x.action}=${(typeof x.needs === 'string' ? [x.needs] : x.needs).some((n) => role.permissions.includes(n))}`);
      expect(got).to.deep.equal(want);
    });
  }

  it('record-level: nobody acts on another practice\u2019s user, even holding every permission', () => {
    const all = actorWith(ALL_PERMISSIONS, { isOwner: true });
    for (const action of ['user.show', 'user.update', 'user.deactivate', 'user.reactivate', 'user.endSessions', 'user.resetMfa'] as const) {
      expect(authorize(all, action, stranger), action).to.equal(false);
    }
    expect(authorize(all, 'role.update', { ...frontDeskRole, practiceId: OTHER_PRACTICE }, { permissions: [] })).to.equal(false);
  });

  it('only an owner acts on the owner; nobody deactivates or resets themselves', () => {
    const manager = actorWith(['users.manage', 'roles.manage', 'patients.read']);
    for (const action of ['user.update', 'user.deactivate', 'user.endSessions', 'user.resetMfa'] as const) expect(authorize(manager, action, owner), action).to.equal(false);
    const theOwner = actorWith(ALL_PERMISSIONS, { isOwner: true, id: owner.id });
    expect(authorize(theOwner, 'user.deactivate', owner)).to.equal(false);
    expect(authorize(theOwner, 'user.resetMfa', owner)).to.equal(false);
    expect(authorize(actorWith(ALL_PERMISSIONS, { isOwner: true }), 'user.deactivate', owner)).to.equal(true);
  });

  it('no escalation: a role editor cannot grant, create or assign beyond what they hold; the owner role is fixed', () => {
    const manager = actorWith(['users.manage', 'roles.manage', 'patients.read', 'patients.write']);
    expect(authorize(manager, 'role.create', { permissions: ['patients.read'] })).to.equal(true);
    expect(authorize(manager, 'role.create', { permissions: ['patients.read', 'practice.export'] })).to.equal(false);
    expect(authorize(manager, 'role.update', frontDeskRole, { permissions: ['patients.read', 'clinical.read'] })).to.equal(false);
    const clinical: RoleRecord = { ...frontDeskRole, permissions: ['clinical.read'] };
    expect(authorize(manager, 'role.update', clinical, { permissions: [] }), 'emptying a role one could not have built').to.equal(false);
    expect(authorize(manager, 'role.assign', clinical)).to.equal(false);
    const ownerRole: RoleRecord = { practiceId: PRACTICE, id: '20000000-0000-4000-8000-000000000009', isSystem: true, permissions: ALL_PERMISSIONS };
    expect(authorize(actorWith(ALL_PERMISSIONS, { isOwner: true }), 'role.update', ownerRole, { permissions: [] })).to.equal(false);
  });

  it('the practice security settings are the owner\u2019s alone, even for holders of settings.manage', () => {
    const manager = actorWith(DEFAULT_ROLES.find((r) => r.key === 'office_manager')!.permissions);
    expect(manager.permissions.has('settings.manage')).to.equal(true);
    expect(authorize(manager, 'practice.securitySettings')).to.equal(false);
    expect(authorize(actorWith(ALL_PERMISSIONS, { isOwner: true }), 'practice.securitySettings')).to.equal(true);
    expect(authorize(actorWith(ALL_PERMISSIONS, { isOwner: true }), 'practice.acknowledgeAlert', { practiceId: OTHER_PRACTICE })).to.equal(false);
  });

  it('documents by kind: documents.download opens every kind, documents.office only insurance cards, photo ID and consents', () => {
    const patient = { practiceId: PRACTICE, id: '30000000-0000-4000-8000-000000000001', locationId: '40000000-0000-4000-8000-000000000001' };
    const kinds = ['radiograph', 'intraoral_photo', 'insurance_card', 'photo_id', 'consent', 'other'];
    const opens = (a: StaffActor) => kinds.filter((k) => authorize(a, 'patient.viewDocument', patient, new Date(), k));
    const role = (key: string) => actorWith(DEFAULT_ROLES.find((r) => r.key === key)!.permissions);
    expect(opens(role('front_desk'))).to.deep.equal(['insurance_card', 'photo_id', 'consent']);
    expect(opens(role('billing'))).to.deep.equal(['insurance_card', 'photo_id', 'consent']);
    expect(opens(role('hygienist'))).to.deep.equal(kinds);
    expect(opens(actorWith(['patients.read']))).to.deep.equal([]);
    expect(opens(actorWith(['documents.download'], { practiceId: OTHER_PRACTICE })), 'another practice').to.deep.equal([]);
  });

  it('an unknown action throws', () => {
    const anyAuthorize = authorize as (actor: StaffActor, action: string) => boolean;
    expect(() => anyAuthorize(actorWith([]), 'user.obliterate')).to.throw(/unknown action/);
  });
});
