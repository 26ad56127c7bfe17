import path from 'node:path';
import { Router, type Request } from 'express';
import type { Config } from '../config/env.js';
import { isUuid, type Db } from '../db/tenant.js';
import * as health from '../controllers/health.controller.js';
import * as home from '../controllers/home.controller.js';
import * as practices from '../controllers/practices.controller.js';
import * as wellKnown from '../controllers/well-known.controller.js';
import { requireOperatorRecentAuth, requireRecentAuth } from '../auth/staff-auth.js';
import type { Clock } from '../shared/types.js';
import { alertsController } from '../controllers/alerts.controller.js';
import { settingsController } from '../controllers/settings.controller.js';
import { accountController } from '../controllers/account.controller.js';
import * as signInModule from '../controllers/signin.controller.js';
import type { Keyring } from '../crypto/keyring.js';
import { csrfProtection, csrfToken } from '../middleware/csrf.js';
import type { FileStore } from '../storage/file-store.js';
import { parseUpload } from '../uploads/multipart.js';
import { auditController } from '../controllers/audit.controller.js';
import { operatorsController } from '../controllers/operators.controller.js';
import { passwordResetController } from '../controllers/password-reset.controller.js';
import { documentsController } from '../controllers/documents.controller.js';
import { exportsController } from '../controllers/exports.controller.js';
import { rightsController } from '../controllers/rights.controller.js';
import { vendorsController } from '../controllers/vendors.controller.js';
import { incidentsController } from '../controllers/incidents.controller.js';
import { scheduleController } from '../controllers/schedule.controller.js';
import { configuredIntegrations } from '../compliance/coverage.js';
import { notesController } from '../controllers/notes.controller.js';
import { linksController } from '../controllers/links.controller.js';
import { plansController } from '../controllers/plans.controller.js';
import { portalController } from '../controllers/portal.controller.js';
import { formsController } from '../controllers/forms.controller.js';
import { messagesController } from '../controllers/messages.controller.js';
import { complianceController } from '../controllers/compliance.controller.js';
import { patientsController } from '../controllers/patients.controller.js';
import { invitationsController } from '../controllers/invitations.controller.js';
import { rolesController } from '../controllers/roles.controller.js';
import { usersController } from '../controllers/users.controller.js';
import { operatorRoute, patientLinkRoute, publicRoute, requirePermission, signedInRoute, webhookRoute } from './access.js';

const { signInController } = signInModule;

export interface RouteDeps {
  config: Config;
  db: Db;
  keyring: Keyring;
  clock: Clock;
  /** Encrypted file blobs (documents and images). */
  files: FileStore;
  /** Signs short-lived file URLs (uploads/signed-urls.ts). */
  fileUrlKey: Buffer;
}

/**
 * The whole route table. Every route's first handler declares its access (routes/access.ts);
 * test/http/route-inventory.test.ts fails on any route that does not.
 */
export function buildRouter({ config, db, keyring, clock, files, fileUrlKey }: RouteDeps): Router {
  const r = Router();
  const signIn = signInController({ db, keyring, clock, production: config.isProduction, ...(config.seedDemo && !config.isProduction ? { demoCredentialsFile: path.join(config.dataDir, 'demo-owner.txt') } : {}) });
  const account = accountController({ db, keyring, clock });
  const invitations = invitationsController({ db, clock });
  const passwordReset = passwordResetController({ db, keyring, clock, publicUrl: config.publicUrl });
  const users = usersController({ db, clock, publicUrl: config.publicUrl });
  const roles = rolesController({ db, clock });
  const audit = auditController({ db, keyring, clock });
  const patients = patientsController({ db, keyring, clock });
  const notes = notesController({ db, keyring, clock });
  const plans = plansController({ db, keyring, clock });
  const links = linksController({ db, keyring, clock, publicUrl: config.publicUrl });
  const portal = portalController({ db, keyring, files, clock });
  const formsC = formsController({ db, keyring, clock });
  const messages = messagesController({ db, keyring, clock, config });
  const compliance = complianceController({ db, clock });
  const documents = documentsController({ db, keyring, files, clock, fileUrlKey });
  const exportsC = exportsController({ db, keyring, files, clock });
  const rights = rightsController({ db, keyring, clock });
  const vendors = vendorsController({ db, keyring, files, clock, integrations: configuredIntegrations(config) });
  const incidents = incidentsController({ db, keyring, files, clock });
  const schedule = scheduleController({ db, keyring, clock });
  const operators = operatorsController({
    db,
    keyring,
    clock,
    publicUrl: config.publicUrl,
    backups: { dir: config.backup.dir, keep: config.backup.keep, maxAgeDays: config.backup.maxAgeDays, configured: config.database.kind === 'embedded' || Boolean(config.backup.databaseUrl), drillConfigured: config.database.kind === 'embedded' || Boolean(config.backup.drillServerUrl) },
  });
  const alerts = alertsController({ db, keyring, clock });
  const settings = settingsController({ db, clock, production: config.isProduction });
  // SECURITY: every state change below passes the CSRF check; every form page gets a token.
  const forms = [csrfToken] as const;

  r.get('/healthz', publicRoute('liveness probe for the container runtime'), health.live);
  r.get('/readyz', publicRoute('readiness probe for the load balancer'), health.ready(db));
  r.get('/.well-known/security.txt', publicRoute('RFC 9116 vulnerability-report contact'), wellKnown.securityTxt(config));
  if (config.subprocessorsPath) r.get(config.subprocessorsPath, publicRoute('the installation’s sub-processor list (SUBPROCESSORS_PATH): vendor names and services, no PHI'), vendors.publicList);

  r.get('/', publicRoute('the front door: the one practice\u2019s sign-in, or a box for a practice\u2019s address; never the list'), home.index(config, db));
  r.get('/p/:slug', publicRoute('practice front page: business name, addresses, phone; no PHI'), practices.show(db));

  r.get('/p/:slug/sign-in', publicRoute('staff sign-in form'), ...forms, signIn.show);
  r.post('/p/:slug/sign-in', publicRoute('staff sign-in: password step'), csrfProtection, signIn.create);
  r.get('/p/:slug/sign-in/code', publicRoute('second factor form; needs the password step in the session'), ...forms, signIn.showCode);
  r.post('/p/:slug/sign-in/code', publicRoute('second factor; needs the password step in the session'), csrfProtection, signIn.verifyCode);
  r.get('/p/:slug/mfa/enroll', publicRoute('MFA enrolment; needs the password step in the session'), ...forms, signIn.showEnroll);
  r.post('/p/:slug/mfa/enroll', publicRoute('MFA enrolment; needs the password step in the session'), csrfProtection, signIn.confirmEnroll);
  r.post('/p/:slug/sign-out', publicRoute('anyone may end their own session'), csrfProtection, signIn.destroy);
  r.get('/p/:slug/home', signedInRoute(), ...forms, home.staffHome({ db, keyring, clock }));

  r.get('/p/:slug/account', signedInRoute(), ...forms, account.show);
  r.post('/p/:slug/account/password', signedInRoute(), csrfProtection, ...forms, account.updatePassword);
  r.post('/p/:slug/account/sessions/end', signedInRoute(), csrfProtection, account.endSessions);
  r.get('/p/:slug/step-up', signedInRoute(), ...forms, account.showStepUp);
  r.post('/p/:slug/step-up', signedInRoute(), csrfProtection, ...forms, account.confirmStepUp);
  r.post('/p/:slug/account/recovery-codes', signedInRoute(), csrfProtection, requireRecentAuth(clock), ...forms, account.newRecoveryCodes);
  // Two-step sign-in from the account page: set it up, or replace the authenticator (step-up checked inside: a first set-up has no factor to step up with).
  r.get('/p/:slug/account/mfa', signedInRoute(), ...forms, account.showMfa);
  r.post('/p/:slug/account/mfa', signedInRoute(), csrfProtection, ...forms, account.confirmMfa);

  // Security alerts and the owner's security settings (step-up to open and to save).
  r.get('/p/:slug/alerts', requirePermission('alerts.read'), ...forms, alerts.index);
  r.post('/p/:slug/alerts/:id/acknowledge', requirePermission('alerts.read'), csrfProtection, ...forms, alerts.acknowledge);
  const settingsStepUp = requireRecentAuth(clock, { back: (_req, slug) => `/p/${slug}/settings/security` });
  r.get('/p/:slug/settings/security', requirePermission('settings.manage'), settingsStepUp, ...forms, settings.show);
  // The practice's phone, logo, date format and time zone (no step-up: not a security control).
  r.get('/p/:slug/settings/practice', requirePermission('settings.manage'), ...forms, settings.details);
  r.post('/p/:slug/settings/practice', requirePermission('settings.manage'), csrfProtection, ...forms, settings.updateDetails);
  r.post('/p/:slug/settings/practice/logo', requirePermission('settings.manage'), parseUpload, csrfProtection, ...forms, settings.uploadLogo);
  r.post('/p/:slug/settings/practice/logo/remove', requirePermission('settings.manage'), csrfProtection, settings.removeLogo);
  r.get('/p/:slug/logo.png', publicRoute('the practice logo: public branding shown on patient pages, no PHI'), settings.logo);
  r.post('/p/:slug/settings/security', requirePermission('settings.manage'), csrfProtection, settingsStepUp, ...forms, settings.update);

  r.get('/p/:slug/password-reset', publicRoute('password reset request: same answer for every address'), ...forms, passwordReset.show);
  r.post('/p/:slug/password-reset', publicRoute('password reset request: same answer for every address'), csrfProtection, ...forms, passwordReset.create);
  r.get('/p/:slug/password-reset/:token', publicRoute('password reset link: the single-use token is the credential'), ...forms, passwordReset.showChoose);
  r.post('/p/:slug/password-reset/:token', publicRoute('password reset link: the single-use token is the credential'), csrfProtection, ...forms, passwordReset.choose);
  r.get('/p/:slug/invitations/:token', publicRoute('invitation link: the single-use token is the credential'), ...forms, invitations.show);
  r.post('/p/:slug/invitations/:token', publicRoute('invitation link: the single-use token is the credential'), csrfProtection, ...forms, invitations.accept);

  // Staff accounts and roles. SECURITY: every change needs a recent step-up (user/role/MFA changes).
  const userPage = (req: Request, slug: string) => (typeof req.params.id === 'string' && isUuid(req.params.id) ? `/p/${slug}/users/${req.params.id}` : req.method === 'POST' && req.path === `/p/${slug}/users` ? `/p/${slug}/users/new` : `/p/${slug}/users`);
  const stepUp = requireRecentAuth(clock, { back: userPage });
  const roleStepUp = requireRecentAuth(clock, { back: (req, slug) => (typeof req.params.id === 'string' && isUuid(req.params.id) ? `/p/${slug}/roles/${req.params.id}` : `/p/${slug}/roles/new`) });
  r.get('/p/:slug/users', requirePermission('users.manage'), ...forms, users.index);
  r.post('/p/:slug/users/sessions/end', requirePermission('users.manage'), csrfProtection, stepUp, users.endAllSessions);
  r.get('/p/:slug/users/new', requirePermission('users.manage'), ...forms, users.new);
  r.post('/p/:slug/users', requirePermission('users.manage'), csrfProtection, stepUp, users.create);
  r.get('/p/:slug/users/:id', requirePermission('users.manage'), ...forms, users.show);
  r.post('/p/:slug/users/:id/access', requirePermission('users.manage'), csrfProtection, stepUp, ...forms, users.updateAccess);
  r.post('/p/:slug/users/:id/deactivate', requirePermission('users.manage'), csrfProtection, stepUp, users.deactivate);
  r.post('/p/:slug/users/:id/reactivate', requirePermission('users.manage'), csrfProtection, stepUp, ...forms, users.reactivate);
  r.post('/p/:slug/users/:id/unlock', requirePermission('users.manage'), csrfProtection, stepUp, ...forms, users.unlock);
  r.post('/p/:slug/users/:id/sessions/end', requirePermission('users.manage'), csrfProtection, stepUp, users.endSessions);
  r.post('/p/:slug/users/:id/mfa/reset', requirePermission('users.manage'), csrfProtection, stepUp, users.resetMfa);
  r.post('/p/:slug/users/:id/invitation', requirePermission('users.manage'), csrfProtection, stepUp, ...forms, users.reinvite);

  // Patients. SECURITY: searches are POSTs (no names or dates in URLs); every read is audited in the service.
  const onPatient = { patientRoute: true };
  r.get('/p/:slug/patients', requirePermission('patients.read'), ...forms, patients.index);
  r.post('/p/:slug/patients/search', requirePermission('patients.read'), csrfProtection, ...forms, patients.search);
  r.get('/p/:slug/patients/new', requirePermission('patients.write'), ...forms, patients.new);
  r.post('/p/:slug/patients', requirePermission('patients.write'), csrfProtection, ...forms, patients.create);
  r.get('/p/:slug/patients/:id', requirePermission('patients.read', onPatient), patients.show);
  r.get('/p/:slug/patients/:id/edit', requirePermission('patients.write', onPatient), ...forms, patients.edit);
  r.post('/p/:slug/patients/:id', requirePermission('patients.write', onPatient), csrfProtection, ...forms, patients.update);
  r.get('/p/:slug/patients/:id/access', requirePermission('audit.read', onPatient), patients.access);
  const patientStepUp = requireRecentAuth(clock, { back: (req, slug) => (typeof req.params.id === 'string' && isUuid(req.params.id) ? `/p/${slug}/patients/${req.params.id}/break-glass` : `/p/${slug}/patients`) });
  r.get('/p/:slug/patients/:id/break-glass', requirePermission('breakglass.use', onPatient), ...forms, patients.showBreakGlass);
  r.post('/p/:slug/patients/:id/break-glass', requirePermission('breakglass.use', onPatient), csrfProtection, patientStepUp, ...forms, patients.createBreakGlass);
  // Clinical notes: drafts, signing (then locked), amendments.
  r.get('/p/:slug/patients/:id/notes', requirePermission('clinical.read', onPatient), ...forms, notes.index);
  r.post('/p/:slug/patients/:id/notes', requirePermission('clinical.write', onPatient), csrfProtection, ...forms, notes.create);
  r.post('/p/:slug/notes/:id', requirePermission('clinical.write'), csrfProtection, notes.update);
  r.post('/p/:slug/notes/:id/amend', requirePermission('clinical.write'), csrfProtection, notes.amend);

  // Treatment plans: items, totals on the server, present / accept / decline, print (audited).
  r.get('/p/:slug/patients/:id/plans', requirePermission('plans.read', onPatient), ...forms, plans.index);
  r.post('/p/:slug/patients/:id/plans', requirePermission('plans.write', onPatient), csrfProtection, ...forms, plans.create);
  r.post('/p/:slug/plans/:id/items', requirePermission('plans.write'), csrfProtection, ...forms, plans.addItem);
  r.post('/p/:slug/plan-items/:id/delete', requirePermission('plans.write'), csrfProtection, ...forms, plans.removeItem);
  r.post('/p/:slug/plans/:id/status', requirePermission('plans.write'), csrfProtection, ...forms, plans.decide);
  r.get('/p/:slug/plans/:id/print', requirePermission('plans.read'), plans.print);

  // Patient links: staff side.
  r.get('/p/:slug/patients/:id/links', requirePermission('portal.send', onPatient), ...forms, links.index);
  r.post('/p/:slug/patients/:id/links', requirePermission('portal.send', onPatient), csrfProtection, ...forms, links.create);
  r.post('/p/:slug/links/:id/revoke', requirePermission('portal.send'), csrfProtection, links.revoke);
  r.get('/p/:slug/messages', requirePermission('portal.send'), messages.index);
  r.post('/hooks/sms/:slug', webhookRoute('SMS provider callback (STOP/START/HELP): the provider signature is checked first'), messages.inbound);

  // Retention, legal holds and access reviews (compliance.manage). Deleting a patient asks for a recent step-up.
  const retentionStepUp = requireRecentAuth(clock, { back: (req, slug) => (typeof req.params.id === 'string' && isUuid(req.params.id) ? `/p/${slug}/patients/${req.params.id}/retention` : `/p/${slug}/compliance`) });
  r.get('/p/:slug/compliance', requirePermission('compliance.manage'), ...forms, compliance.index);
  const complianceStepUp = requireRecentAuth(clock, { back: (_req, slug) => `/p/${slug}/compliance` });
  r.post('/p/:slug/compliance/legal-hold', requirePermission('compliance.manage'), csrfProtection, complianceStepUp, compliance.practiceHold);
  r.get('/p/:slug/patients/:id/retention', requirePermission('compliance.manage', onPatient), ...forms, compliance.patient);
  r.post('/p/:slug/patients/:id/deletion', requirePermission('compliance.manage', onPatient), csrfProtection, retentionStepUp, ...forms, compliance.deletion);
  r.post('/p/:slug/patients/:id/legal-hold', requirePermission('compliance.manage', onPatient), csrfProtection, retentionStepUp, ...forms, compliance.patientHold);
  r.post('/p/:slug/access-reviews', requirePermission('compliance.manage'), csrfProtection, compliance.startReview);
  r.get('/p/:slug/access-reviews/:id', requirePermission('compliance.manage'), ...forms, compliance.review);
  r.post('/p/:slug/access-reviews/:id/sign-off', requirePermission('compliance.manage'), csrfProtection, ...forms, compliance.signOff);
  r.post('/p/:slug/access-review-items/:id', requirePermission('compliance.manage'), csrfProtection, complianceStepUp, ...forms, compliance.decide);

  // Intake and consent forms: templates (settings) and submissions (forms.review; every read audited).
  r.get('/p/:slug/forms', requirePermission('settings.manage'), formsC.index);
  r.get('/p/:slug/forms/new', requirePermission('settings.manage'), ...forms, formsC.new);
  r.post('/p/:slug/forms', requirePermission('settings.manage'), csrfProtection, ...forms, formsC.create);
  r.get('/p/:slug/forms/:id', requirePermission('settings.manage'), ...forms, formsC.edit);
  r.post('/p/:slug/forms/:id', requirePermission('settings.manage'), csrfProtection, ...forms, formsC.update);
  r.get('/p/:slug/patients/:id/forms', requirePermission('forms.review', onPatient), formsC.patientForms);
  r.get('/p/:slug/form-submissions/:id', requirePermission('forms.review'), ...forms, formsC.show);
  r.post('/p/:slug/form-submissions/:id/review', requirePermission('forms.review'), csrfProtection, formsC.review);
  // Patient side: the code is the first credential, the date of birth the second.
  r.get('/l/:code', publicRoute('patient link: the code, then the date of birth'), ...forms, links.open);
  r.post('/l/:code', publicRoute('patient link: the date-of-birth check (limited per link and per IP)'), csrfProtection, ...forms, links.verify);
  // The patient's pages: each checks the link carries the task.
  r.get('/portal', patientLinkRoute(), ...forms, portal.home);
  r.get('/portal/plan', patientLinkRoute('plan_review'), ...forms, portal.plan);
  r.post('/portal/decision', patientLinkRoute('plan_review'), csrfProtection, ...forms, portal.decide);
  r.get('/portal/forms/:id', patientLinkRoute('intake_forms'), ...forms, portal.showForm);
  r.post('/portal/forms/:id', patientLinkRoute('intake_forms'), csrfProtection, ...forms, portal.submitForm);
  r.get('/portal/uploads', patientLinkRoute('uploads'), ...forms, portal.showUploads);
  r.get('/portal/access', patientLinkRoute('access_report'), ...forms, portal.accessReport);
  r.get('/portal/records', patientLinkRoute('records_download'), ...forms, portal.records);
  r.post('/portal/records', patientLinkRoute('records_download'), csrfProtection, ...forms, portal.startRecords);
  r.get('/portal/records/:id/download', patientLinkRoute('records_download'), portal.downloadRecords);
  r.get('/portal/amendments', patientLinkRoute('amendment_request'), ...forms, portal.amendments);
  r.post('/portal/amendments', patientLinkRoute('amendment_request'), csrfProtection, ...forms, portal.requestAmendment);
  r.post('/portal/uploads', patientLinkRoute('uploads'), parseUpload, csrfProtection, ...forms, portal.upload);
  r.get('/portal/ended', publicRoute('the page after a patient session ends'), links.ended);
  r.post('/portal/sign-out', publicRoute('anyone may end their own session'), csrfProtection, links.signOut);

  // Documents and images. SECURITY: multipart is parsed under hard limits, then CSRF-checked.
  r.get('/p/:slug/patients/:id/documents', requirePermission('patients.read', onPatient), ...forms, documents.index);
  r.post('/p/:slug/patients/:id/documents', requirePermission('documents.upload', onPatient), parseUpload, csrfProtection, ...forms, documents.create);
  r.get('/p/:slug/files/:token', requirePermission('documents.download', { or: ['documents.office'] }), documents.file);
  r.get('/p/:slug/documents/:id', requirePermission('documents.download', { or: ['documents.office'] }), documents.show);
  r.post('/p/:slug/documents/:id/delete', requirePermission('documents.upload'), csrfProtection, requireRecentAuth(clock, { back: (_req, slug) => `/p/${slug}/patients` }), documents.destroy);
  r.get('/p/:slug/break-glass', requirePermission('compliance.manage'), ...forms, patients.review);
  r.post('/p/:slug/break-glass/:id/review', requirePermission('compliance.manage'), csrfProtection, patients.markReviewed);

  // The schedule: a location's day; booking from a patient; an appointment's page.
  r.get('/p/:slug/schedule', requirePermission('schedule.read', { or: ['schedule.manage'] }), schedule.day);
  r.get('/p/:slug/patients/:id/appointments/new', requirePermission('schedule.manage', onPatient), ...forms, schedule.new);
  r.post('/p/:slug/patients/:id/appointments', requirePermission('schedule.manage', onPatient), csrfProtection, ...forms, schedule.create);
  r.get('/p/:slug/appointments/:id', requirePermission('schedule.read', { or: ['schedule.manage'] }), ...forms, schedule.show);
  r.post('/p/:slug/appointments/:id/move', requirePermission('schedule.manage'), csrfProtection, ...forms, schedule.move);
  r.post('/p/:slug/appointments/:id/status', requirePermission('schedule.manage'), csrfProtection, ...forms, schedule.status);
  r.post('/p/:slug/appointments/:id/cancel', requirePermission('schedule.manage'), csrfProtection, ...forms, schedule.cancel);

  // Business associates (the BAA registry, its coverage map, the sub-processor list) and incidents.
  r.get('/p/:slug/vendors', requirePermission('compliance.manage'), ...forms, vendors.index);
  r.post('/p/:slug/vendors', requirePermission('compliance.manage'), csrfProtection, ...forms, vendors.create);
  r.get('/p/:slug/vendors/:id', requirePermission('compliance.manage'), ...forms, vendors.edit);
  r.post('/p/:slug/vendors/:id', requirePermission('compliance.manage'), csrfProtection, ...forms, vendors.update);
  r.post('/p/:slug/vendors/:id/remove', requirePermission('compliance.manage'), csrfProtection, vendors.remove);
  r.post('/p/:slug/vendors/:id/document', requirePermission('compliance.manage'), parseUpload, csrfProtection, ...forms, vendors.attach);
  r.get('/p/:slug/vendors/:id/document', requirePermission('compliance.manage'), vendors.document);
  r.get('/p/:slug/subprocessors', signedInRoute(), vendors.practiceList);
  r.get('/p/:slug/incidents', requirePermission('incidents.manage'), ...forms, incidents.index);
  r.post('/p/:slug/incidents', requirePermission('incidents.manage'), csrfProtection, ...forms, incidents.create);
  r.get('/p/:slug/incidents-log.csv', requirePermission('incidents.manage'), incidents.hhsLog);
  r.get('/p/:slug/incidents/:id', requirePermission('incidents.manage'), ...forms, incidents.show);
  r.post('/p/:slug/incidents/:id/patients', requirePermission('incidents.manage'), csrfProtection, ...forms, incidents.addPatients);
  r.get('/p/:slug/incidents/:id/patients', requirePermission('incidents.manage'), ...forms, incidents.patients);
  r.post('/p/:slug/incidents/:id/patients/find', requirePermission('incidents.manage'), csrfProtection, ...forms, incidents.findPatient);
  r.post('/p/:slug/incidents/:id/patients/change', requirePermission('incidents.manage'), csrfProtection, incidents.changePatient);
  r.post('/p/:slug/incidents/:id/assessment', requirePermission('incidents.manage'), csrfProtection, ...forms, incidents.assess);
  r.post('/p/:slug/incidents/:id/events', requirePermission('incidents.manage'), csrfProtection, ...forms, incidents.addEvent);
  r.post('/p/:slug/incidents/:id/close', requirePermission('incidents.manage'), csrfProtection, ...forms, incidents.close);
  r.get('/p/:slug/incidents/:id/letters', requirePermission('incidents.manage'), incidents.letters);
  r.post('/p/:slug/incident-tasks/:id/done', requirePermission('incidents.manage'), csrfProtection, ...forms, incidents.noticeDone);

  // Patients' rights: the register of requests, a patient's requests and disclosures, the accounting.
  r.get('/p/:slug/requests', requirePermission('rights.manage'), ...forms, rights.register);
  r.get('/p/:slug/patients/:id/rights', requirePermission('rights.manage', onPatient), ...forms, rights.patient);
  r.post('/p/:slug/patients/:id/requests', requirePermission('rights.manage', onPatient), csrfProtection, ...forms, rights.createRequest);
  r.post('/p/:slug/patients/:id/disclosures', requirePermission('rights.manage', onPatient), csrfProtection, ...forms, rights.createDisclosure);
  r.post('/p/:slug/patients/:id/amendments', requirePermission('rights.manage', onPatient), csrfProtection, ...forms, rights.createAmendment);
  r.post('/p/:slug/record-amendments/:id/decide', requirePermission('rights.manage'), csrfProtection, ...forms, rights.decideAmendment);
  r.post('/p/:slug/record-amendments/:id/disagreement', requirePermission('rights.manage'), csrfProtection, ...forms, rights.disagreement);
  r.post('/p/:slug/patients/:id/restrictions', requirePermission('rights.manage', onPatient), csrfProtection, ...forms, rights.createRestriction);
  r.post('/p/:slug/restrictions/:id/end', requirePermission('rights.manage'), csrfProtection, ...forms, rights.endRestriction);
  r.get('/p/:slug/patients/:id/accounting', requirePermission('rights.manage', onPatient), rights.accounting);
  r.post('/p/:slug/patient-requests/:id/extend', requirePermission('rights.manage'), csrfProtection, ...forms, rights.extend);
  r.post('/p/:slug/patient-requests/:id/close', requirePermission('rights.manage'), csrfProtection, ...forms, rights.close);
  // The practice's machine-readable export: starting one and downloading it need a fresh step-up.
  const exportStepUp = requireRecentAuth(clock, { back: (_req, slug) => `/p/${slug}/exports` });
  r.get('/p/:slug/exports', requirePermission('practice.export'), ...forms, exportsC.index);
  r.post('/p/:slug/exports', requirePermission('practice.export'), csrfProtection, exportStepUp, ...forms, exportsC.create);
  r.get('/p/:slug/exports/:id', requirePermission('practice.export'), ...forms, exportsC.show);
  r.get('/p/:slug/exports/:id/download', requirePermission('practice.export'), exportStepUp, exportsC.download);
  r.get('/p/:slug/patients/:id/export', requirePermission('practice.export', onPatient), ...forms, exportsC.confirmForPatient);
  r.post('/p/:slug/patients/:id/export', requirePermission('practice.export', onPatient), csrfProtection, requireRecentAuth(clock, { back: (req, slug) => `/p/${slug}/patients/${typeof req.params.id === 'string' && isUuid(req.params.id) ? req.params.id : ''}` }), ...forms, exportsC.createForPatient);
  r.get('/p/:slug/audit', requirePermission('audit.read'), ...forms, audit.index);
  r.post('/p/:slug/audit/patients', requirePermission('audit.read'), csrfProtection, ...forms, audit.findPatient);
  r.post('/p/:slug/audit/export', requirePermission('audit.read'), csrfProtection, requireRecentAuth(clock, { back: (_req, slug) => `/p/${slug}/audit` }), ...forms, audit.export);

  // Operator access granted by the practice (support cases).
  r.get('/p/:slug/operator-access', requirePermission('compliance.manage'), ...forms, operators.grants);
  r.post('/p/:slug/operator-access', requirePermission('compliance.manage'), csrfProtection, requireRecentAuth(clock, { back: (_req, slug) => `/p/${slug}/operator-access` }), ...forms, operators.grant);
  r.post('/p/:slug/operator-access/:id/revoke', requirePermission('compliance.manage'), csrfProtection, operators.revoke);

  // The operator console (platform operators: practice management, no PHI).
  r.get('/operator/sign-in', publicRoute('operator sign-in form'), ...forms, operators.showSignIn);
  r.post('/operator/sign-in', publicRoute('operator sign-in: password and TOTP'), csrfProtection, ...forms, operators.signIn);
  r.post('/operator/sign-out', publicRoute('anyone may end their own session'), csrfProtection, operators.signOut);
  // SECURITY: operators step up (password + code, 5 minutes) before suspending, terminating, changing settings, accounts and access.
  const practicePage = (req: Request) => (typeof req.params.id === 'string' && isUuid(req.params.id) ? `/operator/practices/${req.params.id}` : '/operator');
  const opStepUp = requireOperatorRecentAuth(clock, { back: practicePage });
  const opAccountsStepUp = requireOperatorRecentAuth(clock, { back: () => '/operator/operators' });
  const opReviewStepUp = requireOperatorRecentAuth(clock, { back: () => '/operator/access-reviews' });
  r.get('/operator', operatorRoute(), ...forms, operators.index);
  r.get('/operator/step-up', operatorRoute(), ...forms, operators.showStepUp);
  r.post('/operator/step-up', operatorRoute(), csrfProtection, ...forms, operators.confirmStepUp);
  r.get('/operator/practices/new', operatorRoute(), ...forms, operators.new);
  r.post('/operator/practices', operatorRoute(), csrfProtection, ...forms, operators.create);
  r.get('/operator/practices/:id', operatorRoute(), ...forms, operators.show);
  r.post('/operator/practices/:id/status', operatorRoute(), csrfProtection, opStepUp, ...forms, operators.status);
  r.post('/operator/practices/:id/settings', operatorRoute(), csrfProtection, opStepUp, ...forms, operators.settings);
  r.post('/operator/practices/:id/terminate', operatorRoute(), csrfProtection, opStepUp, ...forms, operators.terminate);
  r.get('/operator/jobs', operatorRoute(), ...forms, operators.jobs);
  r.get('/operator/backups', operatorRoute(), ...forms, operators.backups);
  r.get('/operator/vendors', operatorRoute(), ...forms, vendors.operatorIndex);
  r.post('/operator/vendors', operatorRoute(), csrfProtection, ...forms, vendors.operatorCreate);
  r.get('/operator/vendors/:id', operatorRoute(), ...forms, vendors.operatorEdit);
  r.post('/operator/vendors/:id', operatorRoute(), csrfProtection, ...forms, vendors.operatorUpdate);
  r.post('/operator/vendors/:id/document', operatorRoute(), parseUpload, csrfProtection, ...forms, vendors.operatorAttach);
  r.get('/operator/vendors/:id/document', operatorRoute(), vendors.operatorDocument);
  r.get('/operator/operators', operatorRoute(), ...forms, operators.operators);
  r.post('/operator/operators/:id/deactivate', operatorRoute(), csrfProtection, opAccountsStepUp, ...forms, operators.deactivate);
  r.post('/operator/operators/:id/reactivate', operatorRoute(), csrfProtection, opAccountsStepUp, ...forms, operators.reactivate);
  r.get('/operator/alerts', operatorRoute(), ...forms, operators.alerts);
  r.post('/operator/alerts/:id/acknowledge', operatorRoute(), csrfProtection, ...forms, operators.acknowledge);
  r.get('/operator/access-reviews', operatorRoute(), ...forms, operators.reviews);
  r.post('/operator/access-reviews', operatorRoute(), csrfProtection, operators.startReview);
  r.get('/operator/access-reviews/:id', operatorRoute(), ...forms, operators.review);
  r.post('/operator/access-reviews/:id/sign-off', operatorRoute(), csrfProtection, ...forms, operators.signOff);
  r.post('/operator/access-review-items/:id', operatorRoute(), csrfProtection, opReviewStepUp, ...forms, operators.decide);

  r.get('/p/:slug/roles', requirePermission('roles.manage'), roles.index);
  r.get('/p/:slug/roles/new', requirePermission('roles.manage'), ...forms, roles.new);
  r.post('/p/:slug/roles', requirePermission('roles.manage'), csrfProtection, roleStepUp, ...forms, roles.create);
  r.get('/p/:slug/roles/:id', requirePermission('roles.manage'), ...forms, roles.edit);
  r.post('/p/:slug/roles/:id', requirePermission('roles.manage'), csrfProtection, roleStepUp, ...forms, roles.update);

  return r;
}
