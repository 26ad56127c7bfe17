/**
 * Every module that declares encrypted columns (encryptedColumns(...)) is imported here, so the
 * registry is complete in every process — server, CLI, jobs. Key rotation walks that registry and
 * then destroys the old key: a table missing here would be left unreadable.
 * test/integration/encrypted-schema.test.ts fails if a bytea column in the schema is not declared.
 */
import './users.queries.js';
import './patients.queries.js';
import './outbox.queries.js';
import './documents.queries.js';
import './notes.queries.js';
import './plans.queries.js';
import './forms.queries.js';
import './alerts.queries.js';
import './exports.queries.js';
import './rights.queries.js';
import './vendors.queries.js';
import './incidents.queries.js';
import './schedule.queries.js';
