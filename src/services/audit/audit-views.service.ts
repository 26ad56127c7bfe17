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
import { activeBreakGlass, findPatients, patientSecrets } from '../../queries/patients.queries.js';
import { PracticeCrypto } from '../../crypto/encrypted-columns.js';
import type { Keyring } from '../../crypto/keyring.js';
import { ACTION_LABELS, describeDetails } from '../../presenters/audit.presenter.js';
import { patientName } from '../../presenters/patient.presenter.js';
import type { AuditFilterForm } from '../../validation/audit.schema.js';
import type { Meta } from '../../shared/types.js';
import { staffWork } from '../staff-work.js';
import { csvCell } from '../../presenters/csv.js';

/**
 * The audit log as the practice reads it (permission audit.read): search with paging, CSV export
 * (step-up at the route; the export is itself audited) and the chain's status. Reading the log is
 * audited too — with the patient id when the search names one.
 */

export const PAGE_SIZE = 50;
export const EXPORT_MAX_ROWS = 100_000;

export interface AuditEntry extends AuditRow {
  actorName: string;
  /** The action in plain language (the CSV keeps `action`). */
  actionLabel: string;
  /** The details as a short sentence. */
  detailText: string;
  /** The patient's name, when the reader may see that patient ('' otherwise: the id is shown). */
  patientName: string;
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

const named = (rows: AuditRow[], names: Map<string, string>, patients: Map<string, string> = new Map()): AuditEntry[] =>
  rows.map((r) => ({
    ...r,
    actorName: r.actor_type === 'user' && r.actor_id ? (names.get(r.actor_id) ?? 'unknown user') : r.actor_type === 'anonymous' ? 'not signed in' : r.actor_type === 'patient_link' ? 'the patient (by link)' : `${r.actor_type}${r.actor_id ? `: ${r.actor_id}` : ''}`,
    actionLabel: ACTION_LABELS[r.action as keyof typeof ACTION_LABELS] ?? r.action,
    detailText: describeDetails(r.details as Record<string, unknown> | null, names),
    patientName: r.patient_id ? (patients.get(r.patient_id) ?? '') : '',
  }));

/**
 * The names of the patients a page of events names, for a reader who may see them (patients.read
 * and the patient's location, or a running break-glass). SECURITY: each name shown is a PHI read:
 * one `list` event per patient, in the same transaction.
 */
async function patientNames(trx: Knex.Transaction, d: AuditDeps, actor: StaffActor, ids: string[], meta: Meta): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  if (ids.length === 0 || !authorize(actor, 'patient.search')) return out;
  const pc = new PracticeCrypto(d.keyring, trx, actor.practiceId);
  for (const row of await findPatients(trx, [...new Set(ids)])) {
    const grant = await activeBreakGlass(trx, actor.id, row.id, meta.now);
    const record = { practiceId: row.practice_id, id: row.id, locationId: row.location_id, ...(grant ? { breakGlassUntil: grant.expires_at } : {}) };
    if (!authorize(actor, 'patient.show', record, meta.now)) continue;
    const plain = await patientSecrets.open(pc, { id: row.id, given_name: row.given_name, family_name: row.family_name });
    await audit.record(trx, { practiceId: actor.practiceId, actor: { kind: 'user', id: actor.id }, action: 'list', resource: { type: 'patient', id: row.id }, patientId: row.id, outcome: 'allowed', ip: meta.ip, requestId: meta.requestId });
    out.set(row.id, patientName(plain));
  }
  return out;
}

export interface AuditDeps {
  db: Db;
  keyring: Keyring;
}

export interface AuditPage {
  entries: AuditEntry[];
  /** The name of the patient the search is about, when the reader may see it. */
  patientName?: string;
  nextBefore?: string;
  users: { id: string; name: string }[];
  chain: ChainStatus;
}

export async function searchAudit(d: AuditDeps, actor: StaffActor, form: AuditFilterForm, meta: Meta): Promise<AuditPage> {
  ensure(authorize(actor, 'audit.search'), { permission: 'audit.read' });
  const filter = toFilter(form);
  return staffWork(d.db, actor, async (trx) => {
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
    const patients = await patientNames(trx, d, actor, [...page.map((r) => r.patient_id).filter((x): x is string => Boolean(x)), ...(filter.patientId ? [filter.patientId] : [])], meta);
    const patientName = filter.patientId ? patients.get(filter.patientId) : undefined;
    return {
      entries: named(page, names, patients),
      ...(patientName ? { patientName } : {}),
      ...(rows.length > PAGE_SIZE ? { nextBefore: page[page.length - 1]!.id } : {}),
      users: [...names].map(([id, name]) => ({ id, name })).sort((a, b) => a.name.localeCompare(b.name)),
      chain: { ...(chain.checkpoint ? { checkpoint: chain.checkpoint } : {}), ...(chain.verification ? { verification: chain.verification } : {}) },
    };
  });
}

export type ExportResult = { ok: true; csv: string; count: number } | { ok: false; error: string };

/** SECURITY: a spreadsheet must never run a cell as a formula (CSV injection). */
const cell = csvCell;

const HEADER = ['seq', 'time_utc', 'actor_type', 'actor_id', 'actor_name', 'action', 'resource_type', 'resource_id', 'patient_id', 'outcome', 'ip', 'request_id', 'reason', 'details'];

/** The matching events as CSV (oldest first), with the export itself audited in the same transaction. */
export async function exportAudit(db: Db, actor: StaffActor, form: AuditFilterForm, meta: Meta): Promise<ExportResult> {
  ensure(authorize(actor, 'audit.export'), { permission: 'audit.read' });
  const filter = toFilter(form);
  return staffWork(db, actor, async (trx) => {
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
