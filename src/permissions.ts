/**
 * The permission catalogue (`area.verb`) and the default roles built from it. Every guard names a
 * permission from here; an unknown name throws (at route-definition time for route guards, so a
 * typo stops the server from starting instead of opening or closing a page by accident).
 * docs/SECURITY.md's role × permission table is generated from this file (`npm run docs:permissions`)
 * and test/unit/permissions.test.ts fails when the two disagree.
 */

export const PERMISSIONS = {
  'patients.read': 'See patient demographics, contact details and intake',
  'patients.write': 'Create and edit patients',
  'clinical.read': 'Read clinical notes and the clinical chart',
  'clinical.write': 'Write, sign and amend clinical notes',
  'plans.read': 'See treatment plans',
  'plans.write': 'Build and present treatment plans',
  'billing.read': 'See fees, insurance and patient portions',
  'documents.upload': 'Upload documents and images',
  'documents.download': 'View and download documents and images',
  'documents.office': 'View and download insurance cards, photo ID and signed consents (not clinical images)',
  'referrals.read': 'See referrals',
  'referrals.write': 'Create and answer referrals',
  'portal.send': 'Send patient links (plans, forms, uploads)',
  'forms.review': 'Review intake and consent submissions',
  'audit.read': 'Search the audit log and see who accessed a record',
  'users.manage': 'Invite, deactivate and reactivate users; end their sessions; reset their MFA',
  'roles.manage': 'Edit roles and assign them',
  'settings.manage': 'Change practice settings',
  'compliance.manage': 'Access reviews, retention, legal holds, operator access',
  'alerts.read': 'See security alerts (page, banner) and acknowledge them',
  'practice.export': 'Export practice data',
  'rights.manage': 'Patients\u2019 rights requests (access, amendment, accounting, restrictions) and the accounting of disclosures',
  'schedule.read': 'See the schedule (day and week views; patient names are an audited read)',
  'schedule.manage': 'Book, move, confirm and cancel appointments; chairs and appointment kinds',
  'incidents.manage': 'The incident and breach register: open, assess, notify (letters, the HHS log)',
  'breakglass.use': 'Open a patient outside one\u2019s normal access in an emergency (reason + step-up)',
} as const;

export type Permission = keyof typeof PERMISSIONS;

export const ALL_PERMISSIONS = Object.keys(PERMISSIONS) as Permission[];

export function isPermission(name: unknown): name is Permission {
  return typeof name === 'string' && Object.hasOwn(PERMISSIONS, name);
}

/** SECURITY: the one check that a name is in the catalogue; unknown names throw. */
export function permission(name: string): Permission {
  if (!isPermission(name)) throw new Error(`unknown permission: ${JSON.stringify(name)}`);
  return name;
}

/**
 * Holding any of these makes a user an administrator: MFA is then always required (even when the
 * practice has not turned it on for everyone).
 */
export const PRIVILEGED_PERMISSIONS: readonly Permission[] = ['users.manage', 'roles.manage', 'settings.manage', 'compliance.manage', 'practice.export', 'audit.read'];

export interface DefaultRole {
  key: string;
  name: string;
  description: string;
  permissions: readonly Permission[];
}

const p = (...names: Permission[]): Permission[] => names.map(permission);

/**
 * The roles every new practice starts with. The owner role always holds every permission
 * (including ones added to the catalogue later) and cannot be edited; the others are copied into
 * the practice and may be edited on its roles page.
 */
export const DEFAULT_ROLES: readonly DefaultRole[] = [
  { key: 'owner', name: 'Owner', description: 'Everything, including users, roles, exports and compliance.', permissions: ALL_PERMISSIONS },
  {
    key: 'provider',
    name: 'Provider (dentist)',
    description: 'Full clinical record; plans; documents; referrals; emergency access.',
    permissions: p('patients.read', 'patients.write', 'clinical.read', 'clinical.write', 'plans.read', 'plans.write', 'billing.read', 'documents.upload', 'documents.download', 'referrals.read', 'referrals.write', 'portal.send', 'forms.review', 'breakglass.use'),
  },
  {
    key: 'hygienist',
    name: 'Hygienist / assistant',
    description: 'Clinical notes and images; reads plans; emergency access.',
    permissions: p('patients.read', 'clinical.read', 'clinical.write', 'plans.read', 'documents.upload', 'documents.download', 'forms.review', 'breakglass.use'),
  },
  {
    key: 'treatment_coordinator',
    name: 'Treatment coordinator',
    description: 'Presents plans and fees; sends plan links; no clinical notes.',
    permissions: p('patients.read', 'patients.write', 'plans.read', 'plans.write', 'billing.read', 'documents.download', 'referrals.read', 'portal.send', 'schedule.read'),
  },
  {
    key: 'front_desk',
    name: 'Front desk',
    description: 'Demographics, intake forms, insurance cards and ID, patient links; no clinical notes or images.',
    permissions: p('patients.read', 'patients.write', 'documents.upload', 'documents.office', 'portal.send', 'forms.review', 'schedule.read', 'schedule.manage'),
  },
  {
    key: 'billing',
    name: 'Billing',
    description: 'Fees, insurance and patient portions; insurance cards and ID; no clinical notes or images.',
    permissions: p('patients.read', 'plans.read', 'billing.read', 'documents.office', 'schedule.read'),
  },
  {
    key: 'office_manager',
    name: 'Office manager',
    description: 'Runs the office: users, roles, settings, audit, compliance and security alerts; no clinical notes.',
    permissions: p('patients.read', 'patients.write', 'plans.read', 'billing.read', 'documents.upload', 'documents.office', 'portal.send', 'forms.review', 'audit.read', 'users.manage', 'roles.manage', 'settings.manage', 'compliance.manage', 'alerts.read', 'rights.manage', 'incidents.manage', 'schedule.read', 'schedule.manage'),
  },
];

export const OWNER_ROLE_KEY = 'owner';

/** What a stored role grants: the owner role everything (catalogue additions included), others their known names. */
export function permissionsOfRole(row: { key: string; is_system: boolean; permissions: readonly string[] }): Permission[] {
  if (row.is_system && row.key === OWNER_ROLE_KEY) return [...ALL_PERMISSIONS];
  return row.permissions.filter(isPermission);
}

export function defaultRole(key: string): DefaultRole | undefined {
  return DEFAULT_ROLES.find((r) => r.key === key);
}

export const TABLE_START = '<!-- permissions:start (generated by `npm run docs:permissions`; do not edit by hand) -->';
export const TABLE_END = '<!-- permissions:end -->';

/** The role × permission table of docs/SECURITY.md, as Markdown (generated from the catalogue). */
export function permissionsTable(): string {
  const head = `| permission | ${DEFAULT_ROLES.map((r) => r.name).join(' | ')} |`;
  const rule = `|---|${DEFAULT_ROLES.map(() => ':-:').join('|')}|`;
  const rows = ALL_PERMISSIONS.map((p) => `| \`${p}\` ${PERMISSIONS[p]} | ${DEFAULT_ROLES.map((r) => (r.permissions.includes(p) ? '✓' : '—')).join(' | ')} |`);
  return [TABLE_START, head, rule, ...rows, TABLE_END].join('\n');
}

/** `document` with its generated table replaced by the current one (throws when the markers are missing). */
export function withPermissionsTable(document: string): string {
  const start = document.indexOf(TABLE_START);
  const end = document.indexOf(TABLE_END);
  if (start < 0 || end < start) throw new Error('the permissions table markers are missing');
  return document.slice(0, start) + permissionsTable() + document.slice(end + TABLE_END.length);
}
