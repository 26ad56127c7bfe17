import type { Knex } from 'knex';

/*
 * How a practice presents itself and its dates (its "Practice details" page):
 * - date_format: how dates are shown and read (MM/DD/YYYY, DD/MM/YYYY, YYYY-MM-DD); times are shown
 *   in practice_settings.timezone (migration 1), now a real IANA zone (checked by the app) that the
 *   owner can change. Exports stay UTC.
 * - logo_png: the practice's logo, re-encoded by sharp to a PNG of at most 600 × 200 (metadata
 *   stripped), shown on the patient pages and the practice page. Business branding, not PHI, so not
 *   encrypted; at most 512 KiB.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    ALTER TABLE practice_settings
      ADD COLUMN date_format text NOT NULL DEFAULT 'MM/DD/YYYY' CHECK (date_format IN ('MM/DD/YYYY', 'DD/MM/YYYY', 'YYYY-MM-DD')),
      ADD COLUMN logo_png bytea CHECK (octet_length(logo_png) <= 524288),
      ADD COLUMN logo_updated_at timestamptz;
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('ALTER TABLE practice_settings DROP COLUMN date_format, DROP COLUMN logo_png, DROP COLUMN logo_updated_at');
}
