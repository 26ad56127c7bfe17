import { parentPort, workerData } from 'node:worker_threads';
import { createKnex } from '../db/knex.js';
import { withPractice } from '../db/tenant.js';
import { fetcher, verifyRange } from './verify-range.js';

/**
 * The second half of a long chain, verified on the other core: its own connection (the runtime
 * role's, in the practice's tenant context), the same checks as the main thread (verify-range.ts).
 */
export interface RangeJob {
  connectionString: string;
  practiceId: string;
  afterSeq: string;
  prevHash: Uint8Array;
  endSeq: string;
  batchSize: number;
  checkpoints: [string, Uint8Array][];
}

const job = workerData as RangeJob;
const knex = createKnex(job.connectionString, { poolMax: 2, applicationName: 'enamel-audit-verify' });
try {
  const run = <T>(work: Parameters<typeof withPractice<T>>[3]): Promise<T> => withPractice(knex, job.practiceId, { kind: 'system', id: 'audit-verifier' }, work);
  const result = await verifyRange(
    fetcher(run, job.batchSize, BigInt(job.endSeq)),
    BigInt(job.afterSeq),
    Buffer.from(job.prevHash),
    job.batchSize,
    new Map(job.checkpoints.map(([seq, hash]) => [seq, Buffer.from(hash)])),
  );
  parentPort!.postMessage({ checked: result.checked, problem: result.problem, lastSeq: result.lastSeq.toString() });
} catch (err) {
  parentPort!.postMessage({ error: err instanceof Error ? err.message : String(err) });
} finally {
  await knex.destroy();
}
