import { randomBytes } from 'node:crypto';
import type { Knex } from 'knex';
import { withPractice } from '../../src/db/tenant.js';
import { ensureDefaultRoles } from '../../src/services/roles/default-roles.service.js';

export interface BuiltPractice {
  id: string;
  slug: string;
  name: string;
  locationIds: string[];
}

/** Creates a practice with settings and locations, as the owner role (like the operator will). */
export async function buildPractice(
  owner: Knex,
  overrides: { slug?: string; name?: string; status?: string; locations?: string[] } = {},
): Promise<BuiltPractice> {
  const slug = overrides.slug ?? `p-${randomBytes(4).toString('hex')}`;
  const name = overrides.name ?? `Practice ${slug}`;
  const [row] = await owner('practices')
    .insert({ slug, name, status: overrides.status ?? 'active' })
    .returning<{ id: string }[]>('id');
  const id = row!.id;
  const locationIds = await withPractice(owner, id, { kind: 'system', id: 'factory' }, async (trx) => {
    await trx('practice_settings').insert({ practice_id: id, phone: '(555) 010-9999' });
    const names = overrides.locations ?? [`${name} Main`];
    const rows = await trx('locations')
      .insert(names.map((n) => ({ practice_id: id, name: n, address_line1: '1 Example Way', city: 'Testville', phone: '(555) 010-0000' })))
      .returning<{ id: string }[]>('id');
    await ensureDefaultRoles(trx, id);
    return rows.map((r) => r.id);
  });
  return { id, slug, name, locationIds };
}
