import type { Knex } from 'knex';

/*
 * The staff session check in one statement. Every staff request used to open a transaction to read
 * the user, the practice settings, the roles and the locations (seven round trips with BEGIN,
 * set_config and COMMIT), and then resolve the slug (one more). enamel_staff_session() sets the
 * tenant context for its own statement (set_config(..., true) in the caller's implicit transaction:
 * it ends with the statement, so nothing leaks to the next user of a pooled connection), reads the
 * same facts under row-level security as the runtime role (SECURITY INVOKER), and resolves the slug
 * through the existing narrow definer function. Nothing is cached: a deactivation, a role change or a
 * sessions-valid-after still applies on the next request.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE FUNCTION enamel_staff_session(p_practice uuid, p_user uuid, p_slug text) RETURNS jsonb
      LANGUAGE plpgsql VOLATILE SECURITY INVOKER
      SET search_path = pg_catalog, public
      AS $$
      DECLARE facts jsonb;
      BEGIN
        PERFORM set_config('app.practice_id', p_practice::text, true);
        PERFORM set_config('app.actor', 'user:' || p_user::text, true);
        SELECT jsonb_build_object(
          'slug_practice', CASE WHEN p_slug IS NULL THEN NULL ELSE enamel_practice_id_by_slug(p_slug) END,
          'practice_name', (SELECT name FROM practices WHERE id = p_practice),
          'user', (SELECT to_jsonb(u) FROM (SELECT status, is_owner, display_name, mfa_enrolled_at, mfa_reset_at, sessions_valid_after FROM users WHERE id = p_user) u),
          'settings', (SELECT to_jsonb(s) FROM (SELECT session_idle_minutes, session_absolute_hours, mfa_required_for_all, date_format, timezone FROM practice_settings) s),
          'roles', COALESCE((SELECT jsonb_agg(jsonb_build_object('key', r.key, 'is_system', r.is_system, 'permissions', r.permissions))
                               FROM user_roles ur JOIN roles r ON r.id = ur.role_id WHERE ur.user_id = p_user), '[]'::jsonb),
          'locations', COALESCE((SELECT jsonb_agg(location_id) FROM user_locations WHERE user_id = p_user), '[]'::jsonb),
          'alerts', (SELECT jsonb_build_object('count', count(*), 'critical', count(*) FILTER (WHERE severity = 'critical'))
                       FROM security_alerts WHERE acknowledged_at IS NULL AND severity IN ('warning', 'critical'))
        ) INTO facts;
        RETURN facts;
      END $$;
    REVOKE ALL ON FUNCTION enamel_staff_session(uuid, uuid, text) FROM PUBLIC;
    GRANT EXECUTE ON FUNCTION enamel_staff_session(uuid, uuid, text) TO enamel_app;
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP FUNCTION enamel_staff_session(uuid, uuid, text)');
}
