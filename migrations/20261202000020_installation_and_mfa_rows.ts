import type { Knex } from 'knex';

/*
 * The rows migration 19 needs (data only):
 * - the installation tenant (fixed id, kind 'installation'): the home of operator audit events,
 *   installation alerts and the operators' access reviews; its slug is reserved and never served;
 * - MFA required for every account of every existing practice (new ones get it by default): an
 *   account without a second factor reaches only enrolment after its password.
 */
const INSTALLATION_ID = '00000000-0000-0000-0000-000000000000';

export async function up(knex: Knex): Promise<void> {
  await knex.raw(`INSERT INTO practices (id, slug, name, status, kind) VALUES (?, 'enamel-installation', 'Installation', 'active', 'installation')`, [INSTALLATION_ID]);
  await knex.raw('UPDATE practice_settings SET mfa_required_for_all = true');
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DELETE FROM security_alerts WHERE practice_id = ?', [INSTALLATION_ID]);
  await knex.raw('DELETE FROM practices WHERE id = ?', [INSTALLATION_ID]);
}
