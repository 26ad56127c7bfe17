import type { Knex } from 'knex';

/*
 * The session row and the staff session check in one statement. The session store read the row
 * (one round trip), then the check read the user, limits, roles, locations and alerts (another).
 * enamel_http_session() reads the unexpired row and, when it holds a staff session, runs
 * enamel_staff_session() (migration 24) for that session's practice and user in the same statement —
 * the tenant context set for this statement only, under row-level security as the runtime role — and
 * names the practice's slug while the practice is active (the request's URL must name the same one).
 * Ids from the row are used only when they are UUIDs. Nothing is cached: it runs on every request.
 */
const UUID = "'^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'";

export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE FUNCTION enamel_http_session(p_sid text, p_now double precision) RETURNS jsonb
      LANGUAGE plpgsql VOLATILE SECURITY INVOKER
      SET search_path = pg_catalog, public
      AS $$
      DECLARE s json; p uuid; u uuid; facts jsonb;
      BEGIN
        SELECT sess INTO s FROM http_sessions WHERE sid = p_sid AND expire >= to_timestamp(p_now);
        IF s IS NULL THEN RETURN NULL; END IF;
        IF (s->'staff'->>'practiceId') ~* ${UUID} AND (s->'staff'->>'userId') ~* ${UUID} THEN
          p := (s->'staff'->>'practiceId')::uuid;
          u := (s->'staff'->>'userId')::uuid;
          facts := enamel_staff_session(p, u, NULL) || jsonb_build_object(
            'practice_id', p, 'user_id', u,
            'practice_slug', (SELECT slug FROM practices WHERE id = p AND status = 'active'));
        END IF;
        RETURN jsonb_build_object('sess', s, 'facts', facts);
      END $$;
    REVOKE ALL ON FUNCTION enamel_http_session(text, double precision) FROM PUBLIC;
    GRANT EXECUTE ON FUNCTION enamel_http_session(text, double precision) TO enamel_app;
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP FUNCTION enamel_http_session(text, double precision)');
}
