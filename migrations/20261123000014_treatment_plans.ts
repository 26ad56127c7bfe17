import type { Knex } from 'knex';

/*
 * Treatment plans: phases of items (CDT code, tooth, surfaces, description, fee, insurance
 * estimate — one encrypted envelope per item; totals are computed on the server from it). Status
 * draft → presented → accepted / declined. Acceptance fixes a SHA-256 of the plan's content; from
 * then on a trigger refuses any change to the plan or its items, whoever asks.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE TABLE treatment_plans (
      id uuid PRIMARY KEY,
      practice_id uuid NOT NULL,
      patient_id uuid NOT NULL,
      title bytea NOT NULL,
      status text NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'presented', 'accepted', 'declined')),
      created_by uuid NOT NULL,
      presented_at timestamptz,
      decided_at timestamptz,
      decided_by text CHECK (decided_by ~ '^(user|patient_link):[0-9a-f-]{36}$'),
      accepted_hash text CHECK (accepted_hash ~ '^[0-9a-f]{64}$'),
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      CHECK ((status = 'accepted') = (accepted_hash IS NOT NULL)),
      CHECK ((status IN ('accepted', 'declined')) = (decided_at IS NOT NULL)),
      UNIQUE (practice_id, id),
      FOREIGN KEY (practice_id, patient_id) REFERENCES patients (practice_id, id)
    );
    CREATE INDEX treatment_plans_patient ON treatment_plans (practice_id, patient_id, created_at DESC);
    SELECT enamel_tenant_table('treatment_plans');

    CREATE TABLE treatment_plan_items (
      id uuid PRIMARY KEY,
      practice_id uuid NOT NULL,
      plan_id uuid NOT NULL,
      phase integer NOT NULL CHECK (phase BETWEEN 1 AND 9),
      content bytea NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      FOREIGN KEY (practice_id, plan_id) REFERENCES treatment_plans (practice_id, id)
    );
    CREATE INDEX treatment_plan_items_plan ON treatment_plan_items (practice_id, plan_id, phase, created_at);
    SELECT enamel_tenant_table('treatment_plan_items');

    -- A decided plan is final: no change to it or to its items.
    CREATE FUNCTION enamel_plan_guard() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
      plan_status text;
    BEGIN
      IF TG_TABLE_NAME = 'treatment_plans' THEN
        IF TG_OP = 'DELETE' OR OLD.status IN ('accepted', 'declined') THEN
          RAISE EXCEPTION 'a decided treatment plan cannot be changed' USING ERRCODE = '42501';
        END IF;
        RETURN NEW;
      END IF;
      SELECT status INTO plan_status FROM treatment_plans WHERE id = COALESCE(NEW.plan_id, OLD.plan_id);
      IF plan_status IN ('accepted', 'declined') THEN
        RAISE EXCEPTION 'the items of a decided treatment plan cannot be changed' USING ERRCODE = '42501';
      END IF;
      IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
      RETURN NEW;
    END $$;
    CREATE TRIGGER treatment_plans_guard BEFORE UPDATE OR DELETE ON treatment_plans FOR EACH ROW EXECUTE FUNCTION enamel_plan_guard();
    CREATE TRIGGER treatment_plan_items_guard BEFORE INSERT OR UPDATE OR DELETE ON treatment_plan_items FOR EACH ROW EXECUTE FUNCTION enamel_plan_guard();

    GRANT SELECT, INSERT ON treatment_plans TO enamel_app;
    GRANT UPDATE (title, status, presented_at, decided_at, decided_by, accepted_hash, updated_at) ON treatment_plans TO enamel_app;
    GRANT SELECT, INSERT, DELETE ON treatment_plan_items TO enamel_app;
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP TABLE treatment_plan_items; DROP TABLE treatment_plans; DROP FUNCTION enamel_plan_guard();');
}
