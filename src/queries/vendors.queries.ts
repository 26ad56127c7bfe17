import type { Knex } from 'knex';
import { encryptedColumns } from '../crypto/encrypted-columns.js';

/** What the practice (or operator) wrote about a vendor: may name anything, so encrypted. */
export const vendorSecrets = encryptedColumns('vendors', { notes: { type: 'text' } });

export type DataSeen = 'phi' | 'messages_no_phi' | 'none';
export type AgreementStatus = 'none' | 'requested' | 'executed' | 'expired' | 'not_required';

export interface VendorRow {
  id: string;
  practice_id: string;
  name: string;
  service: string;
  integration: string | null;
  data_seen: DataSeen;
  agreement: AgreementStatus;
  signed_on: string | null;
  expires_on: string | null;
  review_on: string | null;
  document_file_id: string | null;
  document_type: string | null;
  notes: Buffer | null;
  listed: boolean;
  removed_at: Date | null;
  created_at: Date;
  updated_at: Date;
}

/** The registry of the practice in context (RLS), current entries by name. Dates as YYYY-MM-DD text. */
export function listVendors(trx: Knex.Transaction): Promise<VendorRow[]> {
  return trx('vendors')
    .whereNull('removed_at')
    .orderBy('name')
    .select<VendorRow[]>('id', 'practice_id', 'name', 'service', 'integration', 'data_seen', 'agreement', trx.raw('signed_on::text AS signed_on'), trx.raw('expires_on::text AS expires_on'), trx.raw('review_on::text AS review_on'), 'document_file_id', 'document_type', 'notes', 'listed', 'removed_at', 'created_at', 'updated_at');
}

export function findVendor(trx: Knex.Transaction, id: string): Promise<VendorRow | undefined> {
  return trx('vendors')
    .where({ id })
    .whereNull('removed_at')
    .first<VendorRow | undefined>('id', 'practice_id', 'name', 'service', 'integration', 'data_seen', 'agreement', trx.raw('signed_on::text AS signed_on'), trx.raw('expires_on::text AS expires_on'), trx.raw('review_on::text AS review_on'), 'document_file_id', 'document_type', 'notes', 'listed', 'removed_at', 'created_at', 'updated_at');
}

export async function insertVendor(trx: Knex.Transaction, row: Record<string, unknown>): Promise<void> {
  await trx('vendors').insert(row);
}

export async function updateVendor(trx: Knex.Transaction, id: string, changes: Record<string, unknown>): Promise<void> {
  await trx('vendors').where({ id }).update({ ...changes, updated_at: trx.fn.now() });
}

export async function insertVendorChange(trx: Knex.Transaction, row: { practice_id: string; vendor_id: string; changed_at: Date; change: 'added' | 'updated' | 'agreement' | 'removed'; agreement: AgreementStatus | null; changed_by: string }): Promise<void> {
  await trx('vendor_changes').insert(row);
}

export interface VendorChangeRow {
  changed_at: Date;
  change: 'added' | 'updated' | 'agreement' | 'removed';
  agreement: AgreementStatus | null;
  name: string;
  service: string;
}

/** The dated history of the registry (the sub-processor list shows it), newest first. */
export function vendorChanges(trx: Knex.Transaction, limit: number): Promise<VendorChangeRow[]> {
  return trx('vendor_changes as c').join('vendors as v', 'v.id', 'c.vendor_id').orderBy('c.changed_at', 'desc').limit(limit).select<VendorChangeRow[]>('c.changed_at', 'c.change', 'c.agreement', 'v.name', 'v.service');
}

export interface GapRow {
  gap: string;
  state: 'missing' | 'expired';
  since: Date;
}

export function listGaps(trx: Knex.Transaction): Promise<GapRow[]> {
  return trx('baa_gaps').select<GapRow[]>('gap', 'state', 'since');
}

/** Replaces the stored gaps with `gaps`; returns the ones that are new (or changed state). */
export async function replaceGaps(trx: Knex.Transaction, practiceId: string, gaps: { gap: string; state: 'missing' | 'expired' }[], now: Date): Promise<string[]> {
  const before = new Map((await listGaps(trx)).map((g) => [g.gap, g.state]));
  const fresh = gaps.filter((g) => before.get(g.gap) !== g.state);
  const keep = new Set(gaps.map((g) => g.gap));
  const gone = [...before.keys()].filter((g) => !keep.has(g));
  if (gone.length) await trx('baa_gaps').whereIn('gap', gone).delete();
  for (const g of fresh) await trx('baa_gaps').insert({ practice_id: practiceId, gap: g.gap, state: g.state, since: now }).onConflict(['practice_id', 'gap']).merge(['state', 'since']);
  return fresh.map((g) => g.gap);
}
