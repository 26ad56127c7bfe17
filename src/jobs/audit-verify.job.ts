import { raiseAlert } from '../alerts/alerts.js';
import { sealAll } from '../audit/sealer.js';
import { verifyPractice } from '../audit/verify.js';
import { insertVerification } from '../queries/audit.queries.js';
import { allPracticeIds } from '../queries/practices.queries.js';
import type { Job, JobContext } from './scheduler.js';

async function verifyAll(ctx: JobContext, incremental: boolean): Promise<Record<string, number>> {
  await sealAll(ctx.db);
  let checked = 0;
  let broken = 0;
  const practices = await allPracticeIds(ctx.db.knex);
  for (const practiceId of practices) {
    const r = await verifyPractice(ctx.db, ctx.provider, practiceId, { incremental });
    checked += r.checked;
    await ctx.db.withPractice(practiceId, { kind: 'system', id: 'audit-verify' }, (trx) => insertVerification(trx, r, incremental));
    if (!r.ok) {
      broken++;
      // SECURITY: a broken chain is an incident: alert the practice (ids and numbers only).
      ctx.logger.error({ practiceId, problem: r.problem?.kind, seq: r.problem?.seq }, 'AUDIT CHAIN VERIFICATION FAILED');
      await ctx.db.withPractice(practiceId, { kind: 'system', id: 'audit-verify' }, (trx) =>
        raiseAlert(trx, { practiceId, kind: 'audit_verification_failed', severity: 'critical', details: { seq: Number(r.problem!.seq) } }),
      );
    }
  }
  return { practices: practices.length, checked, broken };
}

/** Every hour: verifies what was added since the last signed checkpoint that still matches. */
export const auditVerifyJob: Job = {
  name: 'audit-verify',
  schedule: '17 * * * *',
  run: (ctx) => verifyAll(ctx, true),
};

/** Every night: recomputes every chain from the start. */
export const auditVerifyFullJob: Job = {
  name: 'audit-verify-full',
  schedule: '27 3 * * *',
  run: (ctx) => verifyAll(ctx, false),
};
