import { randomBytes, randomUUID } from 'node:crypto';
import type { Knex } from 'knex';
import { PracticeCrypto } from '../../src/crypto/encrypted-columns.js';
import type { Keyring } from '../../src/crypto/keyring.js';
import { withPractice, type Db } from '../../src/db/tenant.js';
import { patientSecrets } from '../../src/queries/patients.queries.js';
import { rememberPhi } from './phi-scan.js';
import { ensurePracticeDefaults } from '../../src/services/practices/practice-defaults.js';

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
    await ensurePracticeDefaults(trx, id);
    return rows.map((r) => r.id);
  });
  return { id, slug, name, locationIds };
}

/** A patient with fake demographics (sealed like the app does), at `locationId`. */
export async function buildPatient(
  db: Db,
  keyring: Keyring,
  p: BuiltPractice,
  values: { givenName?: string; familyName?: string; dateOfBirth?: string; phone?: string; email?: string; locationId?: string; memberId?: string } = {},
): Promise<{ id: string; givenName: string; familyName: string; dateOfBirth: string }> {
  const id = randomUUID();
  const givenName = values.givenName ?? 'Pat';
  const familyName = values.familyName ?? `Testperson${randomBytes(3).toString('hex')}`;
  const dateOfBirth = values.dateOfBirth ?? '1980-04-12';
  rememberPhi(familyName, dateOfBirth, values.phone ?? '(555) 010-2233', values.email, values.memberId ?? 'MBR-000111', '12 Example Street');
  await db.withPractice(p.id, { kind: 'system', id: 'factory' }, async (trx) => {
    const sealed = await patientSecrets.seal(new PracticeCrypto(keyring, trx, p.id), id, {
      given_name: givenName,
      family_name: familyName,
      date_of_birth: dateOfBirth,
      sex: 'female',
      phone: values.phone ?? '(555) 010-2233',
      email: values.email ?? null,
      preferred_contact: 'phone',
      address: { line1: '12 Example Street', city: 'Springfield', region: 'IL', postalCode: '00000' },
      insurance: { carrier: 'Example Dental Mutual', memberId: values.memberId ?? 'MBR-000111' },
      emergency_contact: { name: 'Sam Example', phone: '(555) 010-4455', relationship: 'spouse' },
    });
    await trx('patients').insert({ id, practice_id: p.id, location_id: values.locationId ?? p.locationIds[0], status: 'active', ...sealed });
  });
  return { id, givenName, familyName, dateOfBirth };
}
