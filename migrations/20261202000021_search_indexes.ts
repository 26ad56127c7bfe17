import type { Knex } from 'knex';

/*
 * Two more blind indexes on patients, for what a front desk types:
 * - family_name_prefix_bidx: the first three letters of the normalised last name ("smi"), so
 *   "Smi", "Smith" and "John Smith" find Smith and Smithers (the service filters the candidates on
 *   the decrypted names);
 * - phone_last4_bidx: the last four digits of the phone number.
 * Existing rows get theirs from fillMissingIndexes (start-up and `enamel keys resume`): the keys
 * are not reachable from SQL. src/crypto/README.md says what each index leaks.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    ALTER TABLE patients ADD COLUMN family_name_prefix_bidx bytea, ADD COLUMN phone_last4_bidx bytea;
    CREATE INDEX patients_family_name_prefix ON patients (practice_id, family_name_prefix_bidx);
    CREATE INDEX patients_phone_last4 ON patients (practice_id, phone_last4_bidx);
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('ALTER TABLE patients DROP COLUMN family_name_prefix_bidx, DROP COLUMN phone_last4_bidx');
}
