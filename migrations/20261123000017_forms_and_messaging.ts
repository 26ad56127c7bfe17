import type { Knex } from 'knex';

/*
 * Patient links, second part.
 * - A link carries one or more tasks (plan review, intake forms, uploads) instead of one purpose;
 *   a forms link names the form templates it asks for.
 * - Intake and consent forms: practice templates with insert-only versions (fields + notice text,
 *   no patient data); submissions are encrypted (answers and signer), bound to the template version
 *   and hashed; staff mark them reviewed.
 * - Patient uploads: a document can be uploaded through a link instead of by a user.
 * - Messaging: SMS consent on the patient (time and source, TCPA); opt-outs per phone number (the
 *   number encrypted with a blind index, as on patients); outbox messages name their link so staff
 *   see each link's delivery status.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    ALTER TABLE patient_links ADD COLUMN tasks text[];
    UPDATE patient_links SET tasks = ARRAY[purpose];
    ALTER TABLE patient_links ALTER COLUMN tasks SET NOT NULL;
    ALTER TABLE patient_links DROP COLUMN purpose;
    ALTER TABLE patient_links ADD COLUMN form_template_ids uuid[] NOT NULL DEFAULT '{}';
    ALTER TABLE patient_links ADD CONSTRAINT patient_links_tasks CHECK (
      cardinality(tasks) BETWEEN 1 AND 3 AND tasks <@ ARRAY['plan_review', 'intake_forms', 'uploads']::text[]);
    ALTER TABLE patient_links ADD CONSTRAINT patient_links_plan CHECK (('plan_review' = ANY (tasks)) = (plan_id IS NOT NULL));
    ALTER TABLE patient_links ADD CONSTRAINT patient_links_forms CHECK (('intake_forms' = ANY (tasks)) = (cardinality(form_template_ids) > 0));

    CREATE TABLE form_templates (
      id uuid PRIMARY KEY,
      practice_id uuid NOT NULL REFERENCES practices(id),
      key text NOT NULL CHECK (key ~ '^[a-z][a-z0-9_]{1,40}$'),
      archived_at timestamptz,
      created_at timestamptz NOT NULL DEFAULT now(),
      UNIQUE (practice_id, key),
      UNIQUE (practice_id, id)
    );
    SELECT enamel_tenant_table('form_templates');
    GRANT SELECT, INSERT ON form_templates TO enamel_app;
    GRANT UPDATE (archived_at) ON form_templates TO enamel_app;

    CREATE TABLE form_template_versions (
      id uuid PRIMARY KEY,
      practice_id uuid NOT NULL,
      template_id uuid NOT NULL,
      version integer NOT NULL CHECK (version > 0),
      definition jsonb NOT NULL CHECK (jsonb_typeof(definition) = 'object'),
      created_by uuid,
      created_at timestamptz NOT NULL DEFAULT now(),
      UNIQUE (template_id, version),
      UNIQUE (practice_id, id),
      FOREIGN KEY (practice_id, template_id) REFERENCES form_templates (practice_id, id)
    );
    SELECT enamel_tenant_table('form_template_versions');
    GRANT SELECT, INSERT ON form_template_versions TO enamel_app;

    CREATE TABLE form_submissions (
      id uuid PRIMARY KEY,
      practice_id uuid NOT NULL,
      patient_id uuid NOT NULL,
      template_version_id uuid NOT NULL,
      link_id uuid NOT NULL,
      content bytea NOT NULL,
      content_hash text NOT NULL CHECK (content_hash ~ '^[0-9a-f]{64}$'),
      submitted_at timestamptz NOT NULL,
      client_ip inet,
      user_agent text CHECK (length(user_agent) <= 400),
      reviewed_by uuid,
      reviewed_at timestamptz,
      CHECK ((reviewed_by IS NULL) = (reviewed_at IS NULL)),
      FOREIGN KEY (practice_id, patient_id) REFERENCES patients (practice_id, id),
      FOREIGN KEY (practice_id, template_version_id) REFERENCES form_template_versions (practice_id, id)
    );
    CREATE INDEX form_submissions_patient ON form_submissions (practice_id, patient_id, submitted_at DESC);
    CREATE INDEX form_submissions_link ON form_submissions (practice_id, link_id);
    SELECT enamel_tenant_table('form_submissions');
    GRANT SELECT, INSERT ON form_submissions TO enamel_app;
    GRANT UPDATE (reviewed_by, reviewed_at) ON form_submissions TO enamel_app;

    ALTER TABLE patient_documents ALTER COLUMN uploaded_by DROP NOT NULL;
    ALTER TABLE patient_documents ADD COLUMN uploaded_via_link uuid;
    ALTER TABLE patient_documents ADD CONSTRAINT patient_documents_uploader CHECK ((uploaded_by IS NULL) <> (uploaded_via_link IS NULL));

    ALTER TABLE patients ADD COLUMN sms_consent_at timestamptz;
    ALTER TABLE patients ADD COLUMN sms_consent_source text CHECK (sms_consent_source IN ('written', 'verbal', 'online'));
    ALTER TABLE patients ADD CONSTRAINT patients_sms_consent CHECK ((sms_consent_at IS NULL) = (sms_consent_source IS NULL));

    CREATE TABLE sms_opt_outs (
      id uuid PRIMARY KEY,
      practice_id uuid NOT NULL REFERENCES practices(id),
      phone bytea NOT NULL,
      phone_bidx bytea NOT NULL,
      opted_out boolean NOT NULL,
      keyword text NOT NULL CHECK (keyword ~ '^[A-Z]{1,12}$'),
      changed_at timestamptz NOT NULL
    );
    CREATE INDEX sms_opt_outs_phone ON sms_opt_outs (practice_id, phone_bidx);
    SELECT enamel_tenant_table('sms_opt_outs');
    GRANT SELECT, INSERT ON sms_opt_outs TO enamel_app;
    GRANT UPDATE (opted_out, keyword, changed_at, phone, phone_bidx) ON sms_opt_outs TO enamel_app;

    ALTER TABLE outbox_messages ADD COLUMN link_id uuid;
    CREATE INDEX outbox_link ON outbox_messages (practice_id, link_id) WHERE link_id IS NOT NULL;
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    DROP INDEX outbox_link;
    ALTER TABLE outbox_messages DROP COLUMN link_id;
    DROP TABLE sms_opt_outs;
    ALTER TABLE patients DROP CONSTRAINT patients_sms_consent, DROP COLUMN sms_consent_source, DROP COLUMN sms_consent_at;
    ALTER TABLE patient_documents DROP CONSTRAINT patient_documents_uploader, DROP COLUMN uploaded_via_link;
    DROP TABLE form_submissions;
    DROP TABLE form_template_versions;
    DROP TABLE form_templates;
    ALTER TABLE patient_links DROP CONSTRAINT patient_links_forms, DROP CONSTRAINT patient_links_plan, DROP CONSTRAINT patient_links_tasks, DROP COLUMN form_template_ids;
    ALTER TABLE patient_links ADD COLUMN purpose text;
    UPDATE patient_links SET purpose = tasks[1];
    ALTER TABLE patient_links ALTER COLUMN purpose SET NOT NULL, DROP COLUMN tasks;
  `);
}
