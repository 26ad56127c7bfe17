import type { Logger } from 'pino';
import type { StaffActor } from '../policies/actor.js';
import type { Formatter, PracticeBrand } from '../presenters/format.js';
import type { OperatorActor } from '../services/operators/operators.service.js';
import type { LinkSession } from '../services/links/link-work.js';

declare global {
  namespace Express {
    interface Request {
      /** Request id: generated here (or taken from a trusted proxy), on every log line and error page. */
      id: string;
      /** Logger bound to this request's id. */
      log: Logger;
    }
    interface Locals {
      /** Per-response CSP nonce for the rare inline script or style. */
      cspNonce: string;
      /** CSRF token for this page's forms (middleware/csrf.ts). */
      csrfToken?: string;
      /** The signed-in staff member of the practice in the URL, loaded fresh each request (auth/staff-auth.ts). */
      actor?: StaffActor;
      /** The signed-in platform operator (/operator/... routes only). */
      operator?: OperatorActor;
      /** A multipart limit the upload broke (413 too large, 400 malformed), set by uploads/multipart.ts. */
      uploadError?: 400 | 413;
      /** The patient's verified link (/portal routes only). */
      patientLink?: LinkSession;
      /** Open warning/critical alerts: for holders of alerts.read (staff) and for operators; the layout shows a banner. */
      alertBanner?: { count: number; critical: number; operator?: boolean };
      /** How dates and times are shown: the practice's format and zone; UTC and ISO outside a practice (presenters/format.ts). */
      fmt: Formatter;
      /** The practice heading a patient page: name, phone, logo (links and /portal). */
      brand?: PracticeBrand;
    }
  }
}

export {};
