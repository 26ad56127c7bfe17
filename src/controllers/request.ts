import type { Readable } from 'node:stream';
import type { Request, Response } from 'express';
import type { RESOURCE_TYPES } from '../audit/event.schema.js';
import type { Clock, Meta } from '../shared/types.js';
import { formStash, takeStash } from '../auth/session-stash.js';
import { AccessDenied, type StaffActor } from '../policies/index.js';
import type { OperatorActor } from '../services/operators/operators.service.js';
import { idParams } from '../validation/ids.js';

/** The request facts services record with their audit events (IP, request id, the clock's now). */
export function requestMeta(req: Request, clock: Clock): Meta {
  return { ip: req.ip ?? '0.0.0.0', requestId: req.id, now: new Date(clock()) };
}

/** SECURITY: the actor the route's access marker checked; a route without one is a programming error. */
export function actorOf(res: Response): StaffActor {
  const actor = res.locals.actor;
  if (!actor) throw new Error('route has no staff access marker');
  return actor;
}

/** `:id` parsed by schema; a malformed id is treated like another practice's id (not found, audited). */
export function idOf(req: Request, type: (typeof RESOURCE_TYPES)[number]): string {
  const p = idParams.safeParse(req.params);
  if (!p.success) throw new AccessDenied({ resource: { type } });
  return p.data.id;
}

/** What a step-up interrupted at the form posting to `postPath`, put back once (sealed in the session meanwhile). */
export interface Restored {
  text(name: string, max?: number): string;
  list(name: string): string[];
}

export function restoredForm(req: Request, postPath: string, clock: Clock): Restored | undefined {
  const typed = takeStash<Record<string, unknown>>(req, formStash(postPath), clock());
  if (!typed) return undefined;
  return {
    text: (name, max = 1000) => (typeof typed[name] === 'string' ? (typed[name] as string).slice(0, max) : ''),
    list: (name) => {
      const v = typed[name];
      return (Array.isArray(v) ? v : typeof v === 'string' ? [v] : []).filter((x): x is string => typeof x === 'string').slice(0, 100);
    },
  };
}

/** The notice on a form restored after a step-up. */
export const RESTORED_NOTICE = 'You confirmed it is you. What you typed is back in the form: check it and submit again.';

/** SECURITY: the operator the route's operator marker checked; a route without one is a programming error. */
export function operatorOf(res: Response): OperatorActor {
  const op = res.locals.operator;
  if (!op) throw new Error('route has no operator access marker');
  return op;
}

/**
 * Streams a file a service opened (and audited) as an attachment: the server's file name, the
 * length when known; a failed read ends the response instead of sending half a file as whole.
 */
export function sendDownload(res: Response, file: { stream: Readable; filename: string; contentType: string; bytes?: number }): void {
  res.setHeader('Content-Type', file.contentType);
  res.setHeader('Content-Disposition', `attachment; filename="${file.filename}"`);
  res.setHeader('X-Content-Type-Options', 'nosniff');
  if (file.bytes) res.setHeader('Content-Length', String(file.bytes));
  file.stream.on('error', () => res.destroy());
  file.stream.pipe(res);
}
