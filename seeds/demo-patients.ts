import { createHash, randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import type { Knex } from 'knex';
import sharp from 'sharp';
import { PracticeCrypto } from '../src/crypto/encrypted-columns.js';
import { saveFile } from '../src/crypto/encrypted-files.js';
import type { Keyring } from '../src/crypto/keyring.js';
import { withPractice } from '../src/db/tenant.js';
import { documentSecrets } from '../src/queries/documents.queries.js';
import { noteSecrets } from '../src/queries/notes.queries.js';
import { planItemSecrets, planSecrets } from '../src/queries/plans.queries.js';
import { planContentHash, type ItemContent } from '../src/services/patients/plans.service.js';
import type { FileStore } from '../src/storage/file-store.js';
import { processUpload } from '../src/uploads/pipeline.js';
import { generatePatients, prng } from './patient-generator.js';

/**
 * Evaluation only: makes the demo practice look alive — 300 fake patients, signed notes, treatment
 * plans (some accepted) and sample images (drawn here, sent through the real upload pipeline).
 * Idempotent: does nothing when the practice already has patients.
 */
const NOTES = [
  'Prophylaxis completed. Light calculus lower anteriors. OHI given; patient to floss daily.',
  'Composite restoration placed, shade A2. Occlusion checked and adjusted. Tolerated well.',
  'Periodic exam: no new caries. Recall in six months.',
  'Sensitivity to cold on the lower left. Desensitising varnish applied; review in four weeks.',
];
const PROCEDURES: Omit<ItemContent, 'fee' | 'insurance'>[] = [
  { cdt: 'D1110', tooth: null, surfaces: null, description: 'Adult prophylaxis' },
  { cdt: 'D2391', tooth: '30', surfaces: 'O', description: 'Resin composite, one surface, posterior' },
  { cdt: 'D2740', tooth: '14', surfaces: null, description: 'Crown, porcelain/ceramic' },
  { cdt: 'D0274', tooth: null, surfaces: null, description: 'Bitewings, four radiographic images' },
];

export async function seedDemoPatients(owner: Knex, keyring: Keyring, files: FileStore, practiceId: string, authorId: string): Promise<number> {
  const inPractice = <T>(work: (trx: Knex.Transaction) => Promise<T>): Promise<T> => owner.transaction((t) => withPractice(t, practiceId, { kind: 'system', id: 'seed' }, work));
  if (await inPractice(async (trx) => Boolean(await trx('patients').first('id')))) return 0;
  const locations = await inPractice((trx) => trx('locations').pluck('id'));
  const patients = await generatePatients(inPractice, keyring, practiceId, locations, 300, { seed: 7 });
  const rand = prng(11);
  await inPractice(async (trx) => {
    const pc = new PracticeCrypto(keyring, trx, practiceId);
    for (const [i, p] of patients.slice(0, 60).entries()) {
      const id = randomUUID();
      const body = NOTES[i % NOTES.length]!;
      await trx('clinical_notes').insert({ id, practice_id: practiceId, patient_id: p.id, author_id: authorId, location_id: p.locationId, status: 'signed', signed_at: new Date(), content_hash: createHash('sha256').update(body).digest('hex'), ...(await noteSecrets.seal(pc, id, { body })) });
    }
    for (const [i, p] of patients.slice(0, 30).entries()) {
      const planId = randomUUID();
      const title = i % 2 ? 'Restorative plan' : 'Hygiene and radiographs';
      await trx('treatment_plans').insert({ id: planId, practice_id: practiceId, patient_id: p.id, status: 'draft', created_by: authorId, ...(await planSecrets.seal(pc, planId, { title })) });
      const items: (ItemContent & { id: string; phase: number })[] = [];
      for (let k = 0; k < 2 + (i % 2); k++) {
        const proc = PROCEDURES[(i + k) % PROCEDURES.length]!;
        const fee = 8000 + Math.floor(rand() * 120) * 1000;
        const item = { ...proc, fee, insurance: Math.floor(fee * 0.6), id: randomUUID(), phase: 1 + (k % 2) };
        items.push(item);
        const { id, phase, ...content } = item;
        await trx('treatment_plan_items').insert({ id, practice_id: practiceId, plan_id: planId, phase, ...(await planItemSecrets.seal(pc, id, { content })) });
      }
      if (i % 3 === 0) {
        await trx('treatment_plans').where({ id: planId }).update({ status: 'accepted', presented_at: new Date(), decided_at: new Date(), decided_by: `user:${authorId}`, accepted_hash: planContentHash(planId, title, items) });
      }
    }
    for (const [i, p] of patients.slice(0, 12).entries()) {
      const drawn = await sharp({ create: { width: 800, height: 600, channels: 3, background: { r: 235 - i * 5, g: 200, b: 190 + i * 3 } } })
        .composite([{ input: Buffer.from(`<svg width="800" height="600"><ellipse cx="400" cy="300" rx="${260 - i * 6}" ry="170" fill="#f4efe6" stroke="#c9b8a8" stroke-width="12"/><text x="30" y="570" font-size="28" fill="#555">DEMO IMAGE</text></svg>`) }])
        .jpeg()
        .toBuffer();
      const accepted = await processUpload(drawn, 'demo.jpg');
      const main = await saveFile(pc, files, Readable.from([accepted.data]));
      const thumb = await saveFile(pc, files, Readable.from([accepted.thumb!]));
      const id = randomUUID();
      await trx('patient_documents').insert({ id, practice_id: practiceId, patient_id: p.id, kind: 'intraoral_photo', content_type: accepted.contentType, file_id: main.id, thumb_file_id: thumb.id, width: accepted.width, height: accepted.height, byte_size: accepted.data.length, uploaded_by: authorId, ...(await documentSecrets.seal(pc, id, { title: 'Demo intraoral photo' })) });
    }
  });
  return patients.length;
}
