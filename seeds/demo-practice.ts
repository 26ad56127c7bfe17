import type { Knex } from 'knex';
import { withPractice } from '../src/db/tenant.js';
import { ensurePracticeDefaults } from '../src/services/practices/practice-defaults.js';

/**
 * The demo practice for evaluation: two locations, all data clearly fake (555 numbers, example
 * addresses). Applied on the first embedded start; idempotent (does nothing if it exists).
 * Runs as the owner role, which may create practices; tenant rows go in through withPractice.
 */
export const DEMO_SLUG = 'demo';

export async function seed(owner: Knex): Promise<{ created: boolean; practiceId: string }> {
  const existing = await owner('practices').where({ slug: DEMO_SLUG }).first<{ id: string } | undefined>('id');
  if (existing) return { created: false, practiceId: existing.id };
  return owner.transaction(async (trx) => {
    const [practice] = await trx('practices')
      .insert({ slug: DEMO_SLUG, name: 'Bright Smiles Dental (DEMO — fake data)' })
      .returning<{ id: string }[]>('id');
    const practiceId = practice!.id;
    await withPractice(trx, practiceId, { kind: 'system', id: 'seed' }, async (t) => {
      await t('practice_settings').insert({ practice_id: practiceId, timezone: 'America/Chicago', phone: '(555) 010-0100' });
      await t('locations').insert([
        {
          practice_id: practiceId,
          name: 'Main Street Office',
          address_line1: '100 Example Avenue',
          city: 'Springfield',
          region: 'IL',
          postal_code: '00000',
          phone: '(555) 010-0101',
        },
        {
          practice_id: practiceId,
          name: 'Lakeside Office',
          address_line1: '200 Sample Road, Suite 3',
          city: 'Springfield',
          region: 'IL',
          postal_code: '00000',
          phone: '(555) 010-0102',
        },
      ]);
      await ensurePracticeDefaults(t, practiceId);
    });
    return { created: true, practiceId };
  });
}
