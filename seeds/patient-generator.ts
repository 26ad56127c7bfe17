import { randomUUID } from 'node:crypto';
import type { Knex } from 'knex';
import { PracticeCrypto } from '../src/crypto/encrypted-columns.js';
import type { Keyring } from '../src/crypto/keyring.js';
import { patientSecrets } from '../src/queries/patients.queries.js';

/**
 * Fake patients for the demo practice and for benchmarks: names from short lists, dates of birth,
 * 555-01xx phone numbers and example.org addresses — clearly not real people. Deterministic for a
 * given seed. Rows are sealed exactly as the app seals them (encrypted fields, blind indexes).
 */
const GIVEN = ['Avery', 'Blake', 'Casey', 'Dana', 'Emery', 'Finley', 'Gray', 'Harper', 'Indigo', 'Jordan', 'Kai', 'Logan', 'Morgan', 'Noel', 'Oakley', 'Parker', 'Quinn', 'Reese', 'Sage', 'Taylor', 'Umber', 'Val', 'Wren', 'Yael', 'Zion'];
const FAMILY = ['Applewood', 'Birchfield', 'Cedarly', 'Dunmore', 'Elmsworth', 'Fernhill', 'Glenrock', 'Hollowell', 'Ivybridge', 'Juniper', 'Kestrel', 'Larchmont', 'Maplestone', 'Northgate', 'Oakhurst', 'Pinecrest', 'Quarryton', 'Ravensworth', 'Stonebrook', 'Thornbury', 'Underhill', 'Valewood', 'Willowby', 'Yarrowfield', 'Zephyrton'];
const CARRIERS = ['Example Dental Mutual', 'Sample Smile Insurance', 'Demo Dental PPO'];

/** A small deterministic PRNG (mulberry32). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface FakePatient {
  id: string;
  locationId: string;
  givenName: string;
  familyName: string;
  dateOfBirth: string;
}

/** Inserts `count` fake patients in batches (inside withPractice, one transaction per batch). */
export async function generatePatients(
  withTrx: <T>(work: (trx: Knex.Transaction) => Promise<T>) => Promise<T>,
  keyring: Keyring,
  practiceId: string,
  locationIds: readonly string[],
  count: number,
  options: { seed?: number; batch?: number; onProgress?: (done: number) => void } = {},
): Promise<FakePatient[]> {
  const rand = prng(options.seed ?? 42);
  const pick = <T>(list: readonly T[]): T => list[Math.floor(rand() * list.length)]!;
  const batch = options.batch ?? 500;
  const made: FakePatient[] = [];
  for (let start = 0; start < count; start += batch) {
    const n = Math.min(batch, count - start);
    await withTrx(async (trx) => {
      const pc = new PracticeCrypto(keyring, trx, practiceId);
      const rows: Record<string, unknown>[] = [];
      for (let i = 0; i < n; i++) {
        const id = randomUUID();
        const givenName = pick(GIVEN);
        const familyName = `${pick(FAMILY)}${rand() < 0.3 ? `-${pick(FAMILY)}` : ''}`;
        const year = 1940 + Math.floor(rand() * 80);
        const dateOfBirth = `${year}-${String(1 + Math.floor(rand() * 12)).padStart(2, '0')}-${String(1 + Math.floor(rand() * 28)).padStart(2, '0')}`;
        const locationId = pick(locationIds);
        const phone = `(555) 01${String(Math.floor(rand() * 10))}-${String(Math.floor(rand() * 10000)).padStart(4, '0')}`;
        rows.push({
          id,
          practice_id: practiceId,
          location_id: locationId,
          status: rand() < 0.9 ? 'active' : 'inactive',
          ...(await patientSecrets.seal(pc, id, {
            given_name: givenName,
            family_name: familyName,
            date_of_birth: dateOfBirth,
            sex: pick(['female', 'male', 'other', 'unknown']),
            phone,
            email: `${givenName.toLowerCase()}.${familyName.toLowerCase().replace(/[^a-z]/g, '')}${start + i}@example.org`,
            preferred_contact: pick(['phone', 'sms', 'email', 'mail']),
            address: { line1: `${1 + Math.floor(rand() * 999)} Example Street`, city: 'Springfield', region: 'IL', postalCode: '00000' },
            insurance: rand() < 0.8 ? { carrier: pick(CARRIERS), memberId: `DEMO-${String(Math.floor(rand() * 1e8)).padStart(8, '0')}` } : null,
            emergency_contact: { name: `${pick(GIVEN)} ${familyName}`, phone: '(555) 010-0000', relationship: pick(['spouse', 'parent', 'sibling', 'friend']) },
          })),
        });
        made.push({ id, locationId, givenName, familyName, dateOfBirth });
      }
      await trx('patients').insert(rows);
    });
    options.onProgress?.(start + n);
  }
  return made;
}
