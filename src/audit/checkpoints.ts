import { createPublicKey, verify as verifySignature } from 'node:crypto';
import type { KeyProvider } from '../crypto/key-provider.js';
import type { Db } from '../db/tenant.js';
import { sealPractice } from './sealer.js';

/**
 * Signed checkpoints: Ed25519 over (practice, seq, head hash, time), signed by the key provider.
 * A checkpoint exported off the server lets anyone with the public key alone prove later that the
 * chain up to `seq` had exactly that head.
 */
export interface Checkpoint {
  practiceId: string;
  seq: string;
  headHash: Buffer;
  signedAt: string;
  keyId: string;
  signature: Buffer;
}

export function checkpointMessage(c: Pick<Checkpoint, 'practiceId' | 'seq' | 'headHash' | 'signedAt'>): Buffer {
  return Buffer.from(`enamel-audit-checkpoint-v1\npractice:${c.practiceId}\nseq:${c.seq}\nhead:${c.headHash.toString('hex')}\ntime:${c.signedAt}\n`);
}

/** Seals what is waiting, then signs the practice's chain head (no-op if nothing new since the last one). */
export async function createCheckpoint(db: Db, provider: KeyProvider, practiceId: string): Promise<Checkpoint | undefined> {
  while ((await sealPractice(db, practiceId)) > 0) {
    // keep sealing until the practice is current
  }
  return db.withPractice(practiceId, { kind: 'system', id: 'audit-checkpoint' }, async (trx) => {
    const head = await trx('audit_events').whereNotNull('hash').orderBy('audit_events.seq', 'desc').first<{ seq: string; hash: Buffer } | undefined>(trx.raw('seq::text AS seq'), 'hash');
    if (!head) return undefined;
    const last = await trx('audit_checkpoints').orderBy('audit_checkpoints.seq', 'desc').first<{ seq: string } | undefined>(trx.raw('seq::text AS seq'));
    if (last && last.seq === head.seq) return undefined;
    const signedAt = new Date().toISOString();
    const body = { practiceId, seq: head.seq, headHash: head.hash, signedAt };
    const { keyId, signature } = await provider.signCheckpoint(checkpointMessage(body));
    await trx('audit_checkpoints').insert({ practice_id: practiceId, seq: head.seq, head_hash: head.hash, signed_at: signedAt, key_id: keyId, signature });
    return { ...body, keyId, signature };
  });
}

export function verifyCheckpointSignature(c: Checkpoint, publicKeyDer: Buffer): boolean {
  try {
    const key = createPublicKey({ key: publicKeyDer, format: 'der', type: 'spki' });
    return verifySignature(null, checkpointMessage(c), key, c.signature);
  } catch {
    return false;
  }
}

/** The small text file an operator keeps off the server. Verifiable with the public key it names. */
export function exportCheckpoint(c: Checkpoint, publicKeyDer: Buffer): string {
  return [
    checkpointMessage(c).toString().trimEnd(),
    `key:${c.keyId}`,
    `public-key:${publicKeyDer.toString('base64')}`,
    `signature:${c.signature.toString('base64')}`,
    '',
  ].join('\n');
}

/** Parses an exported checkpoint file; undefined if it is not one. */
export function parseCheckpointFile(text: string): { checkpoint: Checkpoint; publicKey: Buffer } | undefined {
  const fields = new Map(text.split('\n').filter((l) => l.includes(':')).map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1)]));
  const get = (k: string): string | undefined => fields.get(k);
  const [practiceId, seq, head, time, keyId, pk, sig] = ['practice', 'seq', 'head', 'time', 'key', 'public-key', 'signature'].map(get);
  if (!text.startsWith('enamel-audit-checkpoint-v1\n') || !practiceId || !seq || !head || !time || !keyId || !pk || !sig) return undefined;
  return {
    checkpoint: { practiceId, seq, headHash: Buffer.from(head, 'hex'), signedAt: time, keyId, signature: Buffer.from(sig, 'base64') },
    publicKey: Buffer.from(pk, 'base64'),
  };
}
