import { parentPort } from 'node:worker_threads';
import { linkHash } from './canonical.js';

/**
 * Chain hashing off the main thread (used by verify.ts for long chains). Each row is checked on its
 * own: SHA-256(stored hash of the row before ‖ canonical text) must equal the row's stored hash, so
 * batches can be hashed while the main thread reads and parses the next one.
 */
export interface HashJob {
  /** n × 32 bytes: the stored hash of each row's predecessor. */
  prevs: Uint8Array;
  /** n canonical texts. */
  texts: string[];
  /** n × 32 bytes: each row's stored hash. */
  hashes: Uint8Array;
}

/** Index of the first row whose stored hash is wrong, or -1. */
export function firstBadHash(job: HashJob): number {
  for (let i = 0; i < job.texts.length; i++) {
    const digest = linkHash(job.prevs.subarray(i * 32, i * 32 + 32), job.texts[i]!);
    if (!digest.equals(Buffer.from(job.hashes.buffer, job.hashes.byteOffset + i * 32, 32))) return i;
  }
  return -1;
}

parentPort?.on('message', (job: HashJob) => {
  parentPort!.postMessage(firstBadHash(job));
});
