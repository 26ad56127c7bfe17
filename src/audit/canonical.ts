import { hash } from 'node:crypto';

/**
 * The canonical encoding every seal and every verification hashes. Columns are read as text by
 * AUDIT_ROW_COLUMNS so Node and PostgreSQL agree to the microsecond and the byte:
 *
 *   hash(n) = SHA-256( hash(n-1) ‖ UTF-8( JSON [format, practice, seq, id, time, actor type, actor id,
 *             action, resource type, resource id, patient, outcome, ip, request id, reason, details
 *             with sorted keys] ) ),   hash(0) = 32 zero bytes.
 */
export const CHAIN_FORMAT = 1;
export const GENESIS = Buffer.alloc(32);

export const AUDIT_ROW_COLUMNS = [
  'id::text AS id',
  'practice_id',
  'seq::text AS seq',
  `to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS occurred_at`,
  'actor_type',
  'actor_id',
  'action',
  'resource_type',
  'resource_id',
  'patient_id',
  'outcome',
  'host(client_ip) AS client_ip',
  'request_id',
  'reason',
  'details',
  'prev_hash',
  'hash',
] as const;

export interface AuditRow {
  id: string;
  practice_id: string;
  seq: string | null;
  occurred_at: string;
  actor_type: string;
  actor_id: string | null;
  action: string;
  resource_type: string | null;
  resource_id: string | null;
  patient_id: string | null;
  outcome: string;
  client_ip: string | null;
  request_id: string | null;
  reason: string | null;
  details: Record<string, unknown>;
  prev_hash: Buffer | null;
  hash: Buffer | null;
}

function sortedDetails(details: Record<string, unknown>): [string, unknown][] {
  const keys = Object.keys(details);
  if (keys.length > 1) keys.sort();
  return keys.map((k) => [k, details[k]]);
}

export function canonical(row: AuditRow, seq: string): string {
  return JSON.stringify([
    CHAIN_FORMAT,
    row.practice_id,
    seq,
    row.id,
    row.occurred_at,
    row.actor_type,
    row.actor_id,
    row.action,
    row.resource_type,
    row.resource_id,
    row.patient_id,
    row.outcome,
    row.client_ip,
    row.request_id,
    row.reason,
    sortedDetails(row.details),
  ]);
}

// NOTE: one reusable scratch buffer and the one-shot hash: the chain is hashed a million times
// per verification, and a Hash object per row costs more than the hashing itself.
let scratch = Buffer.allocUnsafe(8192);

/** SHA-256(prev ‖ UTF-8 text): one link of the chain. `prev` is the 32-byte hash before it. */
export function linkHash(prev: Uint8Array, text: string): Buffer {
  // A UTF-8 character takes at most 3 bytes per UTF-16 unit: size the scratch for the worst case.
  if (32 + text.length * 3 > scratch.length) scratch = Buffer.allocUnsafe(32 + text.length * 3);
  scratch.set(prev.subarray(0, 32), 0);
  const written = scratch.write(text, 32, 'utf8');
  return hash('sha256', scratch.subarray(0, 32 + written), 'buffer');
}

export function chainHash(prev: Buffer, row: AuditRow, seq: string): Buffer {
  return linkHash(prev, canonical(row, seq));
}
