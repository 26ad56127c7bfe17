import type { Knex } from 'knex';
import { isUuid } from '../validation/ids.js';

/**
 * Tenant context. Every tenant table carries `practice_id` and a forced row-level-security policy
 * `practice_id = enamel_current_practice_id()` (migrations/20261123000001_tenancy.ts). The setting
 * behind that function is only ever set here, with SET LOCAL semantics (set_config(..., true)), so
 * it ends with the transaction and can never leak to the next user of a pooled connection.
 */

export type ActorKind = 'user' | 'patient_link' | 'system' | 'operator' | 'anonymous';

/** Who is doing the work: recorded in the transaction (app.actor) for triggers and audit. Ids only. */
export interface Actor {
  kind: ActorKind;
  id?: string;
}

export const ANONYMOUS: Actor = { kind: 'anonymous' };

/**
 * The installation as a tenant of its own (migration 19, `practices.kind = 'installation'`):
 * operator sign-ins and account changes, installation alerts and the operators' access reviews live
 * in its rows, so the same hash chain, sealer, checkpoints and verifier cover them. It has no slug,
 * no directory entry and no per-practice jobs. The same id is the platform context under which the
 * key provider wraps operator TOTP secrets.
 */
export const INSTALLATION_ID = '00000000-0000-0000-0000-000000000000';

const ACTOR_ID = /^[A-Za-z0-9_-]{1,64}$/;

export { isUuid };

export type TenantWork<T> = (trx: Knex.Transaction) => Promise<T>;

export interface Db {
  /** The runtime role's pool. Outside withPractice it sees no tenant rows at all. */
  readonly knex: Knex;
  /**
   * Runs `work` in one transaction scoped to one practice (RLS) and one actor. Commits when `work`
   * resolves, rolls back when it throws: a failure midway leaves nothing behind.
   */
  withPractice<T>(practiceId: string, actor: Actor, work: TenantWork<T>): Promise<T>;
}

/** Clean-ups to run if a tenant transaction rolls back (afterRollback), by transaction. */
const rollbackCleanups = new WeakMap<Knex.Transaction, (() => Promise<void>)[]>();

/** Statements sent without waiting for their answer (pipelined), by transaction: confirmed at commit. */
const unconfirmed = new WeakMap<Knex.Transaction, Promise<unknown>[]>();

/**
 * SECURITY: the one place the tenant context is set.
 *
 * The runtime pool runs in pipeline mode (db/knex.ts): a statement is written to the connection
 * without waiting for the one before it, and PostgreSQL answers them in order. withPractice uses
 * that twice. The context (`set_config`) goes out with the work's first statement — the server runs
 * it first, so the work never sees a row without it; if it fails, the transaction is aborted and
 * every statement after it fails too. Writes sent with `sendWithoutWaiting` (the audit insert) go
 * out with the next statement or with COMMIT; if one failed, PostgreSQL answered COMMIT with a
 * rollback, and withPractice throws that write's error — the caller never sees a result whose
 * writes did not commit.
 */
export async function withPractice<T>(knex: Knex, practiceId: string, actor: Actor, work: TenantWork<T>): Promise<T> {
  if (!isUuid(practiceId)) throw new TypeError('withPractice: practiceId must be a UUID');
  if (actor.id !== undefined && !ACTOR_ID.test(actor.id)) throw new TypeError('withPractice: actor id must be an id, not free text');
  const actorSetting = actor.id ? `${actor.kind}:${actor.id}` : actor.kind;
  const cleanups: (() => Promise<void>)[] = [];
  const pending: Promise<unknown>[] = [];
  try {
    const result = await knex.transaction(async (trx) => {
      rollbackCleanups.set(trx, cleanups);
      unconfirmed.set(trx, pending);
      sendWithoutWaiting(trx, trx.raw("SELECT set_config('app.practice_id', ?, true), set_config('app.actor', ?, true)", [practiceId, actorSetting]));
      return work(trx);
    });
    // COMMIT was answered; a pipelined write that failed turned it into a rollback.
    const failure = await firstFailure(pending);
    if (failure) throw failure.error;
    return result;
  } catch (err) {
    // The transaction rolled back: undo what it did outside the database, before the caller hears of it.
    for (const cleanup of cleanups) await cleanup().catch(() => undefined);
    // The first failed statement is the cause; later ones only say the transaction was aborted.
    const failure = await firstFailure(pending);
    throw failure ? failure.error : err;
  }
}

/**
 * Sends `statement` on `trx` without waiting for its answer; inside withPractice it is confirmed
 * before withPractice returns (see there). Outside withPractice there is nothing to confirm it
 * against, so this waits for it. Only for statements whose result nobody reads.
 */
export async function sendWithoutWaiting(trx: Knex.Transaction, statement: PromiseLike<unknown>): Promise<void> {
  const list = unconfirmed.get(trx);
  if (!list) {
    await statement;
    return;
  }
  // `.then` is called now, not a tick later as Promise.resolve(statement) would: knex sends a
  // statement when its `.then` is called, so this one goes out before anything the caller sends next.
  const sent = new Promise<unknown>((resolve, reject) => {
    statement.then(resolve, reject);
  });
  sent.catch(() => undefined); // confirmed (and thrown) by withPractice
  list.push(sent);
}

async function firstFailure(pending: readonly Promise<unknown>[]): Promise<{ error: unknown } | undefined> {
  for (const p of pending) {
    try {
      await p;
    } catch (error) {
      return { error };
    }
  }
  return undefined;
}

/**
 * Runs `cleanup` once `trx` has rolled back (or failed to commit) — never after a commit. For work
 * outside the database that the transaction's rows stand for (a blob written before its row): a
 * failure midway leaves no half state. Inside withPractice the clean-up has finished before the
 * caller sees the error; for any other transaction it runs when the rollback settles.
 */
export function afterRollback(trx: Knex.Transaction, cleanup: () => Promise<void>): void {
  const list = rollbackCleanups.get(trx);
  if (list) list.push(cleanup);
  else trx.executionPromise.then(undefined, () => cleanup().catch(() => undefined));
}

export function createDb(knex: Knex): Db {
  return {
    knex,
    withPractice: (practiceId, actor, work) => withPractice(knex, practiceId, actor, work),
  };
}
