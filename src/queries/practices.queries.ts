import type { Knex } from 'knex';
import { INSTALLATION_ID } from '../db/tenant.js';
import type { DateFormat } from '../presenters/format.js';

/** The only SQL touching practices and locations. All but the slug lookup need the tenant context. */

export interface PracticeRow {
  id: string;
  slug: string;
  name: string;
  status: string;
}

export interface LocationRow {
  id: string;
  name: string;
  address_line1: string;
  address_line2: string;
  city: string;
  region: string;
  postal_code: string;
  phone: string;
}

/** An active practice's id from its public slug (SECURITY DEFINER function: returns the id only). */
export async function findActivePracticeIdBySlug(knex: Knex, slug: string): Promise<string | undefined> {
  const result = await knex.raw<{ rows: { id: string | null }[] }>('SELECT enamel_practice_id_by_slug(?) AS id', [slug]);
  return result.rows[0]?.id ?? undefined;
}

/** The current practice (RLS: only the one in context is visible). */
export function findCurrentPractice(trx: Knex.Transaction): Promise<PracticeRow | undefined> {
  return trx<PracticeRow>('practices').first('id', 'slug', 'name', 'status');
}

export function findPracticePhone(trx: Knex.Transaction): Promise<string | null> {
  return trx('practice_settings')
    .first<{ phone: string | null } | undefined>('phone')
    .then((r) => r?.phone ?? null);
}

export interface PracticeSettingsRow {
  session_idle_minutes: number;
  session_absolute_hours: number;
  mfa_required_for_all: boolean;
  portal_link_days: number;
  patient_purge_grace_days: number;
  inactive_account_days: number;
  audit_retention_years: number;
  export_volume_threshold: number;
  security_contact_user_id: string | null;
  /** Whether "Who saw my record" names staff members (false: their role only). */
  access_report_names: boolean;
  /** A business associate agreement's clock for the associate's notice (hours); null: 60 days. */
  ba_notice_hours: number | null;
  /** IANA zone the practice's times are shown in. */
  timezone: string;
  date_format: DateFormat;
  phone: string | null;
  logo_updated_at: Date | null;
}

const SETTINGS_COLUMNS = [
  'session_idle_minutes', 'session_absolute_hours', 'mfa_required_for_all', 'portal_link_days', 'patient_purge_grace_days', 'inactive_account_days', 'audit_retention_years',
  'export_volume_threshold', 'security_contact_user_id', 'access_report_names', 'ba_notice_hours', 'timezone', 'date_format', 'phone', 'logo_updated_at',
] as const;

export interface PracticeBrandRow {
  name: string;
  slug: string;
  phone: string | null;
  logo_updated_at: Date | null;
  date_format: DateFormat;
  timezone: string;
}

/** What a patient page shows of the practice in context: name, phone, logo, date format, zone. */
export function findPracticeBrand(trx: Knex.Transaction): Promise<PracticeBrandRow | undefined> {
  return trx('practices as p').join('practice_settings as s', 's.practice_id', 'p.id').first<PracticeBrandRow | undefined>('p.name', 'p.slug', 's.phone', 's.logo_updated_at', 's.date_format', 's.timezone');
}

/** The practice's logo (a PNG sharp made), if it has one. */
export function findPracticeLogo(trx: Knex.Transaction): Promise<{ logo_png: Buffer; logo_updated_at: Date } | undefined> {
  return trx('practice_settings').whereNotNull('logo_png').first('logo_png', 'logo_updated_at');
}

export function updatePracticeLogo(trx: Knex.Transaction, png: Buffer | null, now: Date): Promise<number> {
  return trx('practice_settings').update({ logo_png: png, logo_updated_at: png ? now : null, updated_at: trx.fn.now() });
}

export function findPracticeSettings(trx: Knex.Transaction): Promise<PracticeSettingsRow | undefined> {
  return trx('practice_settings').first<PracticeSettingsRow | undefined>(SETTINGS_COLUMNS);
}

export function listLocations(trx: Knex.Transaction): Promise<LocationRow[]> {
  return trx<LocationRow>('locations')
    .select('id', 'name', 'address_line1', 'address_line2', 'city', 'region', 'postal_code', 'phone')
    .orderBy('name');
}

/** Every practice id (operator jobs and scheduled work run across practices; ids only). */
export async function allPracticeIds(knex: Knex): Promise<string[]> {
  const r = await knex.raw<{ rows: { id: string }[] }>('SELECT enamel_practice_ids() AS id');
  return r.rows.map((x) => x.id);
}

/** Every tenant that can hold data keys: the installation and every practice (key rotation, re-wrapping, status). */
export async function allTenantIds(knex: Knex): Promise<string[]> {
  return [INSTALLATION_ID, ...(await allPracticeIds(knex))];
}

/** Every audit chain that still exists: the installation's and every practice's (terminated ones until their audit retention has passed). */
export async function auditChainIds(knex: Knex): Promise<string[]> {
  const r = await knex.raw<{ rows: { id: string }[] }>('SELECT enamel_audit_chain_ids() AS id');
  return r.rows.map((x) => x.id);
}

/** A new practice with its settings and first location (inside withPractice for the new id). */
export async function insertPractice(trx: Knex.Transaction, p: { id: string; slug: string; name: string; phone: string; locationName: string }): Promise<void> {
  await trx('practices').insert({ id: p.id, slug: p.slug, name: p.name, status: 'active' });
  await trx('practice_settings').insert({ practice_id: p.id, phone: p.phone });
  await trx('locations').insert({ practice_id: p.id, name: p.locationName, phone: p.phone });
}

export function updatePracticeStatus(trx: Knex.Transaction, id: string, status: 'active' | 'suspended'): Promise<number> {
  return trx('practices').where({ id }).update({ status, updated_at: trx.fn.now() });
}

export function updatePracticeSettingsRow(trx: Knex.Transaction, change: Partial<PracticeSettingsRow>): Promise<number> {
  return trx('practice_settings').update({ ...change, updated_at: trx.fn.now() });
}
