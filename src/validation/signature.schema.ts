import sharp from 'sharp';
import { z } from 'zod';

/**
 * A patient's signature on a plan decision or a form: the typed full name, and either a typed
 * signature or one drawn on the page (public/js/signature.js puts a PNG data URL in a hidden field).
 * A drawing is decoded, checked to be a small PNG (at most 1600×800, 33 kB) and re-encoded (nothing but pixels is kept).
 */
export const signerFields = {
  fullName: z.string().trim().min(2, 'Type your full name.').max(120, 'The name is too long.'),
  signature: z.string().trim().max(120, 'The signature is too long.').default(''),
  // NOTE: form bodies are limited to 64 kB (app.ts); a drawing is a few kB, so 45,000 characters leaves room for the rest.
  drawing: z.string().max(45_000, 'The drawn signature is too large. Clear it and sign again, or type your signature.').default(''),
};

export interface Signer {
  fullName: string;
  signature: string | null;
  drawing: string | null;
}

const PNG_PREFIX = 'data:image/png;base64,';
const MAX_DRAWING_BYTES = 33_000;

/** Every signer problem of a body at once, by field (a drawing's problem shows on the signature). */
export function signerErrors(error: z.ZodError): Record<string, string> {
  const out: Record<string, string> = {};
  for (const issue of error.issues) {
    const field = issue.path[0] === 'drawing' ? 'signature' : String(issue.path[0] ?? '');
    if ((field === 'fullName' || field === 'signature') && !out[field]) out[field] = issue.message;
  }
  return out;
}

/** The signer from checked fields, or the form error to show (and its field). */
export async function signerOf(input: { fullName: string; signature: string; drawing: string }): Promise<{ ok: true; signer: Signer } | { ok: false; error: string; field: 'signature' }> {
  let drawing: string | null = null;
  if (input.drawing !== '') {
    if (!input.drawing.startsWith(PNG_PREFIX)) return { ok: false, field: 'signature', error: 'The drawn signature could not be read. Clear it and sign again, or type your signature.' };
    const bytes = Buffer.from(input.drawing.slice(PNG_PREFIX.length), 'base64');
    if (bytes.length === 0 || bytes.length > MAX_DRAWING_BYTES) return { ok: false, field: 'signature', error: 'The drawn signature could not be read. Clear it and sign again, or type your signature.' };
    try {
      const image = sharp(bytes, { limitInputPixels: 2_000_000 });
      const meta = await image.metadata();
      if (meta.format !== 'png' || !meta.width || !meta.height || meta.width > 1600 || meta.height > 800) throw new Error('not a signature-sized PNG');
      drawing = PNG_PREFIX + (await image.png().toBuffer()).toString('base64');
    } catch {
      return { ok: false, field: 'signature', error: 'The drawn signature could not be read. Clear it and sign again, or type your signature.' };
    }
  }
  if (input.signature === '' && drawing === null) return { ok: false, field: 'signature', error: 'Sign by drawing in the box or by typing your signature.' };
  return { ok: true, signer: { fullName: input.fullName, signature: input.signature === '' ? null : input.signature, drawing } };
}
