import type { Knex } from 'knex';
import { audit } from '../../audit/record.js';
import type { Db } from '../../db/tenant.js';
import { authorize, ensure, type StaffActor } from '../../policies/index.js';
import {
  allAuditEvents,
  countAuditEvents,
  latestCheckpoint,
  latestVerification,
  searchAuditEvents,
  type AuditFilter,
  type AuditRow,
  type CheckpointSummary,
  type VerificationSummary,
} from '../../queries/audit.queries.js';
import { listUsers } from '../../queries/users.queries.js';
import type { AuditFilterForm } from '../../validation/audit.schema.js';
import type { Meta } from '../users/users.service.js';

/**
 * The audit log as the practice reads it (permission audit.read): search with paging, CSV export
 * (step-up at the route; the export is itself audited) and the chain's status. Reading the log is
 * audited too — with the patient id when the search names one.
 */

export const PAGE_SIZE = 50;
export const EXPORT_MAX_ROWS = 100_000;

export interface AuditEntry extends AuditRow {
  actorName: string;
}

export interface ChainStatus {
  checkpoint?: CheckpointSummary;
  verification?: VerificationSummary;
}

export function toFilter(f: AuditFilterForm): AuditFilter {
  return {
    ...(f.actor ? { actorId: f.actor } : {}),
    ...(f.patient ? { patientId: f.patient } : {}),
    ...(f.action ? { action: f.action } : {}),
    ...(f.outcome ? { outcome: f.outcome } : {}),
    ...(f.from ? { from: new Date(`${f.from}T00:00:00Z`) } : {}),
    ...(f.to ? { to: new Date(Date.parse(`${f.to}T00:00:00Z`) + 86_400_000) } : {}),
  };
}

async function staffNames(trx: Knex.Transaction): Promise<Map<string, string>> {
  return new Map((await listUsers(trx)).map((u) => [u.id, u.display_name]));
}

const named = (rows: AuditRow[], names: Map<string, string>): AuditEntry[] =>
  rows.map((r) => ({ ...r, actorName: r.actor_type === 'user' && r.actor_id ? (names.get(r.actor_id) ?? 'unknown user') : r.actor_type === 'anonymous' ? 'not signed in' : `${r.actor_type}${r.actor_id ? `: ${r.actor_id}` : ''}` }));

export interface AuditPage {
  entries: AuditEntry[];
  nextBefore?: string;
  users: { id: string; name: string }[];
  chain: ChainStatus;
}

export async function searchAudit(db: Db, actor: StaffActor, form: AuditFilterForm, meta: Meta): Promise<AuditPage> {
  ensure(authorize(actor, 'audit.search'), { permission: 'audit.read' });
  const filter = toFilter(form);
  return db.withPractice(actor.practiceId, { kind: 'user', id: actor.id }, async (trx) => {
    const rows = await searchAuditEvents(trx, filter, { ...(form.before ? { beforeId: form.before } : {}), limit: PAGE_SIZE + 1 });
    const names = await staffNames(trx);
    const chain = { checkpoint: await latestCheckpoint(trx), verification: await latestVerification(trx) };
    const page = rows.slice(0, PAGE_SIZE);
    await audit.record(trx, {
      practiceId: actor.practiceId,
      actor: { kind: 'user', id: actor.id },
      action: 'search',
      resource: { type: 'audit_log' },
      ...(filter.patientId ? { patientId: filter.patientId } : {}),
      outcome: 'allowed',
      ip: meta.ip,
      requestId: meta.requestId,
      details: { count: page.length },
    });
    return {
      entries: named(page, names),
      ...(rows.length > PAGE_SIZE ? { nextBefore: page[page.length - 1]!.id } : {}),
      users: [...names].map(([id, name]) => ({ id, name })).sort((a, b) => a.name.localeCompare(b.name)),
      chain: { ...(chain.checkpoint ? { checkpoint: chain.checkpoint } : {}), ...(chain.verification ? { verification: chain.verification } : {}) },
    };
  });
}

export type ExportResult = { ok: true; csv: string; count: number } | { ok: false; error: string };

/** SECURITY: a spreadsheet must never run a cell as a formula (CSV injection). */
function cell(value: unknown): string {
  let s = value === null || value === undefined ? '' : value instanceof Date ? value.toISOString() : typeof value === 'object' ? JSON.stringify(value) : String(value);
  if (/^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return `"${s.replace(/"/g, '""')}"`;
}

const HEADER = ['seq', 'time_utc', 'actor_type', 'actor_id', 'actor_name', 'action', 'resource_type', 'resource_id', 'patient_id', 'outcome', 'ip', 'request_id', 'reason', 'details'];

/** The matching events as CSV (oldest first), with the export itself audited in the same transaction. */
export async function exportAudit(db: Db, actor: StaffActor, form: AuditFilterForm, meta: Meta): Promise<ExportResult> {
  ensure(authorize(actor, 'audit.export'), { permission: 'audit.read' });
  const filter = toFilter(form);
  return db.withPractice(actor.practiceId, { kind: 'user', id: actor.id }, async (trx) => {
    const count = await countAuditEvents(trx, filter);
    if (count > EXPORT_MAX_ROWS) return { ok: false, error: `That is ${count.toLocaleString('en-US')} events; an export holds at most ${EXPORT_MAX_ROWS.toLocaleString('en-US')}. Narrow the dates or filters.` };
    const rows = named(await allAuditEvents(trx, filter), await staffNames(trx));
    // The export's own event (written before anything is sent) is not part of the file.
    await audit.record(trx, {
      practiceId: actor.practiceId,
      actor: { kind: 'user', id: actor.id },
      action: 'audit_export',
      resource: { type: 'audit_log' },
      ...(filter.patientId ? { patientId: filter.patientId } : {}),
      outcome: 'allowed',
      ip: meta.ip,
      requestId: meta.requestId,
      details: { count: rows.length, format: 'csv', step_up: true },
    });
    const lines = rows.map((r) => [r.seq, r.occurred_at, r.actor_type, r.actor_id, r.actorName, r.action, r.resource_type, r.resource_id, r.patient_id, r.outcome, r.client_ip, r.request_id, r.reason, r.details].map(cell).join(','));
    return { ok: true, csv: `${[HEADER.map(cell).join(','), ...lines].join('\r\n')}\r\n`, count: rows.length };
  });
}
