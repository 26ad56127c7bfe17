import type { ErrorRequestHandler } from 'express';
import { audit } from '../audit/record.js';
import type { Db } from '../db/tenant.js';
import { AccessDenied } from '../policies/index.js';
import { renderError } from './errors.js';

/**
 * SECURITY: a refused request gets exactly the page a missing record gets (404), so ids of other
 * practices or of records outside one's access cannot be probed; the denial itself is audited for
 * the actor's practice (permission name, resource type and id — never data).
 */
export function accessDenied(db: Db): ErrorRequestHandler {
  return async (err: unknown, req, res, next) => {
    if (!(err instanceof AccessDenied)) return next(err);
    const actor = res.locals.actor;
    const link = res.locals.patientLink;
    if (link && !actor) {
      const { resource } = err.detail;
      await db.withPractice(link.practiceId, { kind: 'patient_link', id: link.linkId }, (trx) =>
        audit.record(trx, { practiceId: link.practiceId, actor: { kind: 'patient_link', id: link.linkId }, action: 'permission_denied', outcome: 'denied', ip: req.ip, requestId: req.id, patientId: link.patientId, ...(resource ? { resource } : {}) }),
      );
    }
    if (actor) {
      const { permission, resource, patientId } = err.detail;
      await db.withPractice(actor.practiceId, { kind: 'user', id: actor.id }, (trx) =>
        audit.record(trx, {
          practiceId: actor.practiceId,
          actor: { kind: 'user', id: actor.id },
          action: 'permission_denied',
          outcome: 'denied',
          ip: req.ip,
          requestId: req.id,
          ...(resource ? { resource } : {}),
          ...(patientId ? { patientId } : {}),
          details: permission ? { permission } : {},
        }),
      );
    }
    renderError(res, 404);
  };
}
