-- Roles and grants an administrator creates once on an external PostgreSQL (13+) for Enamel.
-- Run as a superuser (or a role with CREATEROLE and CREATEDB). Replace the passwords.
-- The compose file runs this automatically on the database container's first start.
--
--   enamel_owner  owns the schema; runs migrations (MIGRATION_DATABASE_URL)
--   enamel_app    what the app connects as (DATABASE_URL): not superuser, no BYPASSRLS, owns
--                 nothing; migrations grant it exactly the table rights it needs.
-- The name enamel_app is fixed: migrations grant to it. If your runtime login must be named
-- differently, create that login and GRANT enamel_app TO it.

\set owner_password `echo "$ENAMEL_OWNER_PASSWORD"`
\set app_password `echo "$ENAMEL_APP_PASSWORD"`

CREATE ROLE enamel_owner LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS PASSWORD :'owner_password';
CREATE ROLE enamel_app   LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS PASSWORD :'app_password';

CREATE DATABASE enamel OWNER enamel_owner ENCODING 'UTF8';
REVOKE ALL ON DATABASE enamel FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE enamel TO enamel_app;

\connect enamel
ALTER SCHEMA public OWNER TO enamel_owner;
REVOKE ALL ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO enamel_app;
