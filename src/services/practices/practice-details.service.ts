import { audit } from '../../audit/record.js';
import type { Db } from '../../db/tenant.js';
import { authorize, ensure, type StaffActor } from '../../policies/index.js';
import type { DateFormat } from '../../presenters/format.js';
import { findPracticeLogo, findPracticeSettings, updatePracticeLogo } from '../../queries/practices.queries.js';
import { staffEvent as event, staffWork as work } from '../staff-work.js';
import type { Meta } from '../../shared/types.js';
import { applySettings } from './practice-settings.service.js';

/**
 * The practice's details as patients and staff see them: its phone number and logo (on every
 * patient page) and how it shows dates and times (date format, time zone). Every change is audited
 * (`settings_change`; the phone and the logo without their values).
 */

export interface PracticeDetails {
  phone: string;
  timeZone: string;
  dateFormat: DateFormat;
  logoUpdatedAt: Date | null;
}

const deny = { permission: 'settings.manage', resource: { type: 'setting' } } as const;

export async function practiceDetails(db: Db, actor: StaffActor): Promise<PracticeDetails> {
  ensure(authorize(actor, 'practice.practiceDetails'), deny);
  return work(db, actor, async (trx) => {
    const s = await findPracticeSettings(trx);
    if (!s) throw new Error('practice has no settings row');
    return { phone: s.phone ?? '', timeZone: s.timezone, dateFormat: s.date_format, logoUpdatedAt: s.logo_updated_at };
  });
}

/** Saves phone, time zone and date format (already validated at the edge); returns how many changed. */
export async function updatePracticeDetails(db: Db, actor: StaffActor, input: Omit<PracticeDetails, 'logoUpdatedAt'>, meta: Meta): Promise<number> {
  ensure(authorize(actor, 'practice.practiceDetails'), deny);
  return work(db, actor, async (trx) => {
    const before = await findPracticeSettings(trx);
    if (!before) throw new Error('practice has no settings row');
    return applySettings(trx, before, { phone: input.phone || null, timezone: input.timeZone, date_format: input.dateFormat }, (e) => event(actor, meta, e));
  });
}

/** Replaces (a PNG from the upload pipeline) or removes (null) the logo. */
export async function setPracticeLogo(db: Db, actor: StaffActor, png: Buffer | null, meta: Meta): Promise<void> {
  ensure(authorize(actor, 'practice.practiceDetails'), deny);
  await work(db, actor, async (trx) => {
    await updatePracticeLogo(trx, png, meta.now);
    await audit.record(trx, event(actor, meta, { action: 'settings_change', resource: { type: 'setting' }, outcome: 'allowed', details: { setting: 'logo' } }));
  });
}

/** The logo of a practice, for its public pages (branding, not PHI: no actor, no audit). */
export async function practiceLogo(db: Db, practiceId: string): Promise<{ png: Buffer; updatedAt: Date } | undefined> {
  const row = await db.withPractice(practiceId, { kind: 'system', id: 'practice-logo' }, (trx) => findPracticeLogo(trx));
  return row ? { png: row.logo_png, updatedAt: row.logo_updated_at } : undefined;
}
