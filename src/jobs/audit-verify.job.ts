import { raiseAlert } from '../alerts/alerts.js';
import { sealAll } from '../audit/sealer.js';
import { verifyPractice } from '../audit/verify.js';
import { INSTALLATION_ID } from '../db/tenant.js';
import { insertVerification } from '../queries/audit.queries.js';
import { auditChainIds } from '../queries/practices.queries.js';
import { raiseInstallationAlert } from '../services/alerts/alerts.service.js';
import type { Job, JobContext } from './scheduler.js';

async function verifyAll(ctx: JobContext, incremental: boolean): Promise<Record<string, number>> {
  await sealAll(ctx.db);
  let checked = 0;
  let broken = 0;
  const chains = await auditChainIds(ctx.db.knex);
  for (const chainId of chains) {
    const r = await verifyPractice(ctx.db, ctx.provider, chainId, { incremental });
    checked += r.checked;
    await ctx.db.withPractice(chainId, { kind: 'system', id: 'audit-verify' }, (trx) => insertVerification(trx, r, incremental));
    if (!r.ok) {
      broken++;
      // SECURITY: a broken chain is an incident: alert the practice and the installation's operators (ids and numbers only).
      ctx.logger.error({ practiceId: chainId, problem: r.problem?.kind, seq: r.problem?.seq }, 'AUDIT CHAIN VERIFICATION FAILED');
      if (chainId !== INSTALLATION_ID) {
        await ctx.db.withPractice(chainId, { kind: 'system', id: 'audit-verify' }, (trx) =>
          raiseAlert(trx, { practiceId: chainId, kind: 'audit_verification_failed', severity: 'critical', details: { seq: Number(r.problem!.seq) } }),
        );
      }
      await raiseInstallationAlert(ctx.db, { kind: 'audit_verification_failed', severity: 'critical', details: { target_type: 'practice', target_id: chainId, seq: Number(r.problem!.seq) } });
    }
  }
  return { chains: chains.length, checked, broken };
}

/** Every hour: verifies what was added since the last signed checkpoint that still matches (every chain: the installation's and each practice's). */
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
