import type { Knex } from 'knex';

/*
 * Business associates and incidents (issue 19, docs/INCIDENTS.md):
 * - vendors: the BAA registry, at two levels — the installation's (practice_id = the installation
 *   tenant: hosting, database, backups, email, SMS, keys) and each practice's own (its IT firm,
 *   labs, clearinghouse, the installation's operator). What data the vendor sees, the agreement's
 *   status and dates, the review date; `integration` ties an installation entry to a configured
 *   integration of the coverage map; 'not_required' is the practice's (or its own IT staff's)
 *   system, where no business associate is involved. Names and services are not PHI (the sub-processor list shows
 *   them); notes are encrypted; the signed agreement is a file in the encrypted store. vendor_changes: the dated history the sub-processor list shows.
 * - baa_gaps: the coverage gaps the daily job last found (one alert when a gap appears, none again
 *   while it stays; a gap closed is removed).
 * - incidents, incident_patients, incident_events (the timeline), incident_tasks (each notice with
 *   its due date, done-at and evidence). Narrative fields are encrypted. incident_patients names
 *   patients by id without a foreign key: a patient's purge leaves the incident's documentation
 *   (§164.530(j): six years), and neither purge function touches these tables.
 * - practice_settings.ba_notice_hours: a business associate agreement's shorter clock for the
 *   associate's notice to the practice (NULL: the rule's 60 days, §164.410).
 * - incidents.manage for the office manager roles still under their default key.
 */
async function eachPractice(knex: Knex, sql: string): Promise<void> {
  await knex.raw(`
    DO $$
    DECLARE p uuid;
    BEGIN
      FOR p IN SELECT id FROM practices LOOP
        PERFORM set_config('app.practice_id', p::text, true);
        EXECUTE $sql$ ${sql} $sql$;
      END LOOP;
      PERFORM set_config('app.practice_id', '', true);
    END $$;
  `);
}

export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE TABLE vendors (
      id uuid PRIMARY KEY,
      practice_id uuid NOT NULL REFERENCES practices(id),
      name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
      service text NOT NULL CHECK (length(service) BETWEEN 1 AND 200),
      integration text CHECK (integration IN ('hosting', 'database', 'file_store', 'backup_target', 'email', 'sms', 'key_provider')),
      data_seen text NOT NULL CHECK (data_seen IN ('phi', 'messages_no_phi', 'none')),
      agreement text NOT NULL CHECK (agreement IN ('none', 'requested', 'executed', 'expired', 'not_required')),
      signed_on date,
      expires_on date,
      review_on date,
      document_file_id uuid,
      document_type text CHECK (document_type IN ('application/pdf', 'image/jpeg', 'image/png', 'image/webp')),
      notes bytea,
      listed boolean NOT NULL DEFAULT true,
      removed_at timestamptz,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      CHECK (agreement <> 'executed' OR signed_on IS NOT NULL),
      CHECK ((document_file_id IS NULL) = (document_type IS NULL)),
      CHECK (expires_on IS NULL OR signed_on IS NULL OR expires_on > signed_on),
      UNIQUE (practice_id, id)
    );
    CREATE INDEX vendors_practice ON vendors (practice_id, name) WHERE removed_at IS NULL;
    SELECT enamel_tenant_table('vendors');
    GRANT SELECT, INSERT, UPDATE ON vendors TO enamel_app;

    CREATE TABLE vendor_changes (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      practice_id uuid NOT NULL,
      vendor_id uuid NOT NULL,
      changed_at timestamptz NOT NULL,
      change text NOT NULL CHECK (change IN ('added', 'updated', 'agreement', 'removed')),
      agreement text CHECK (agreement IN ('none', 'requested', 'executed', 'expired', 'not_required')),
      changed_by uuid NOT NULL,
      FOREIGN KEY (practice_id, vendor_id) REFERENCES vendors (practice_id, id)
    );
    CREATE INDEX vendor_changes_practice ON vendor_changes (practice_id, changed_at DESC);
    SELECT enamel_tenant_table('vendor_changes');
    GRANT SELECT, INSERT ON vendor_changes TO enamel_app;

    CREATE TABLE baa_gaps (
      practice_id uuid NOT NULL REFERENCES practices(id),
      gap text NOT NULL CHECK (gap ~ '^[a-z_]{1,40}(:[0-9a-f-]{36}){0,1}$'),
      state text NOT NULL CHECK (state IN ('missing', 'expired')),
      since timestamptz NOT NULL,
      PRIMARY KEY (practice_id, gap)
    );
    SELECT enamel_tenant_table('baa_gaps');
    GRANT SELECT, INSERT, UPDATE, DELETE ON baa_gaps TO enamel_app;

    ALTER TABLE practice_settings ADD COLUMN ba_notice_hours integer CHECK (ba_notice_hours BETWEEN 1 AND 1440);

    CREATE TABLE incidents (
      id uuid PRIMARY KEY,
      practice_id uuid NOT NULL REFERENCES practices(id),
      kind text NOT NULL CHECK (kind IN ('unauthorized_access', 'lost_device', 'misdirected_message', 'ransomware', 'hacking', 'improper_disposal', 'other')),
      discovered_at timestamptz NOT NULL,
      occurred_at timestamptz,
      vendor_id uuid,
      systems text[] NOT NULL DEFAULT '{}' CHECK (systems <@ ARRAY['records', 'images', 'email', 'text_messages', 'backups', 'paper', 'device', 'other']::text[]),
      summary bytea NOT NULL,
      reported_by bytea,
      opened_by uuid NOT NULL,
      status text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed')),
      assessed_at timestamptz,
      assessed_by uuid,
      assessment bytea,
      outcome text CHECK (outcome IN ('not_breach', 'breach')),
      closed_at timestamptz,
      created_at timestamptz NOT NULL DEFAULT now(),
      CHECK ((outcome IS NULL) = (assessed_at IS NULL)),
      CHECK ((status = 'closed') = (closed_at IS NOT NULL)),
      UNIQUE (practice_id, id),
      FOREIGN KEY (practice_id, vendor_id) REFERENCES vendors (practice_id, id)
    );
    CREATE INDEX incidents_practice ON incidents (practice_id, discovered_at DESC);
    SELECT enamel_tenant_table('incidents');
    GRANT SELECT, INSERT ON incidents TO enamel_app;
    GRANT UPDATE (vendor_id, systems, status, assessed_at, assessed_by, assessment, outcome, closed_at) ON incidents TO enamel_app;

    CREATE TABLE incident_patients (
      practice_id uuid NOT NULL,
      incident_id uuid NOT NULL,
      patient_id uuid NOT NULL,
      added_at timestamptz NOT NULL,
      source text NOT NULL CHECK (source IN ('manual', 'audit_log')),
      PRIMARY KEY (practice_id, incident_id, patient_id),
      FOREIGN KEY (practice_id, incident_id) REFERENCES incidents (practice_id, id)
    );
    SELECT enamel_tenant_table('incident_patients');
    GRANT SELECT, INSERT, DELETE ON incident_patients TO enamel_app;

    CREATE TABLE incident_events (
      id uuid PRIMARY KEY,
      practice_id uuid NOT NULL,
      incident_id uuid NOT NULL,
      at timestamptz NOT NULL,
      kind text NOT NULL CHECK (kind IN ('action', 'containment', 'notice')),
      body bytea NOT NULL,
      recorded_by uuid NOT NULL,
      FOREIGN KEY (practice_id, incident_id) REFERENCES incidents (practice_id, id)
    );
    CREATE INDEX incident_events_incident ON incident_events (practice_id, incident_id, at);
    SELECT enamel_tenant_table('incident_events');
    GRANT SELECT, INSERT ON incident_events TO enamel_app;

    CREATE TABLE incident_tasks (
      id uuid PRIMARY KEY,
      practice_id uuid NOT NULL,
      incident_id uuid NOT NULL,
      kind text NOT NULL CHECK (kind IN ('individuals', 'media', 'hhs', 'ba_notice')),
      due_at timestamptz NOT NULL,
      done_at timestamptz,
      done_by uuid,
      evidence bytea,
      alerted_at timestamptz,
      UNIQUE (practice_id, incident_id, kind),
      CHECK ((done_at IS NULL) = (done_by IS NULL)),
      FOREIGN KEY (practice_id, incident_id) REFERENCES incidents (practice_id, id)
    );
    CREATE INDEX incident_tasks_open ON incident_tasks (practice_id, due_at) WHERE done_at IS NULL;
    SELECT enamel_tenant_table('incident_tasks');
    GRANT SELECT, INSERT, DELETE ON incident_tasks TO enamel_app;
    GRANT UPDATE (due_at, done_at, done_by, evidence, alerted_at) ON incident_tasks TO enamel_app;
  `);
  await eachPractice(knex, `UPDATE roles SET permissions = array_append(permissions, 'incidents.manage')
    WHERE key = 'office_manager' AND NOT ('incidents.manage' = ANY (permissions))`);
}

export async function down(knex: Knex): Promise<void> {
  await eachPractice(knex, `UPDATE roles SET permissions = array_remove(permissions, 'incidents.manage')`);
  await knex.raw(`
    DROP TABLE incident_tasks;
    DROP TABLE incident_events;
    DROP TABLE incident_patients;
    DROP TABLE incidents;
    ALTER TABLE practice_settings DROP COLUMN ba_notice_hours;
    DROP TABLE baa_gaps;
    DROP TABLE vendor_changes;
    DROP TABLE vendors;
  `);
}
