import { fileTypeFromBuffer } from 'file-type';
import sharp from 'sharp';

/**
 * The upload pipeline: hard limits (multer, below) → type sniffed from the bytes against an allow
 * list, and it must agree with the file's name → images re-encoded with sharp (auto-orient; EXIF,
 * GPS and every other metadata dropped; a pixel limit against decompression bombs) with a
 * thumbnail → the caller stores the result encrypted. Anything else is refused with a clear 4xx.
 */
export const UPLOAD_LIMITS = { fileSize: 15 * 1024 * 1024, files: 1, fields: 10, parts: 12, fieldSize: 2048 } as const;
/** 40 megapixels: far above any intraoral camera or sensor; a bomb declares far more. */
export const MAX_PIXELS = 40_000_000;
export const THUMB_SIZE = 320;

const ALLOWED = {
  'image/jpeg': ['jpg', 'jpeg'],
  'image/png': ['png'],
  'image/webp': ['webp'],
  'application/pdf': ['pdf'],
} as const;

export type AllowedType = keyof typeof ALLOWED;

export class UploadRefused extends Error {
  constructor(
    readonly status: 400 | 413 | 415 | 422,
    message: string,
  ) {
    super(message);
    this.name = 'UploadRefused';
  }
}

export interface Accepted {
  contentType: AllowedType;
  data: Buffer;
  thumb?: Buffer;
  width?: number;
  height?: number;
}

const ACCEPTED_TEXT = 'Upload a JPEG, PNG or WebP image, or a PDF.';

/** The declared extension (lower case) of a client file name, if it has one. */
function extensionOf(name: string): string | undefined {
  const m = /\.([A-Za-z0-9]{1,8})$/.exec(name.trim());
  return m?.[1]?.toLowerCase();
}

export async function processUpload(bytes: Buffer, clientName: string): Promise<Accepted> {
  if (bytes.length === 0) throw new UploadRefused(400, 'The file is empty.');
  const detected = await fileTypeFromBuffer(bytes);
  const type = detected?.mime as AllowedType | undefined;
  if (!type || !Object.hasOwn(ALLOWED, type)) throw new UploadRefused(415, `This kind of file is not accepted. ${ACCEPTED_TEXT}`);
  const ext = extensionOf(clientName);
  if (ext && !(ALLOWED[type] as readonly string[]).includes(ext)) {
    throw new UploadRefused(415, `The file is named .${ext}, but its content is ${type === 'application/pdf' ? 'a PDF' : `a ${type.slice(6).toUpperCase()} image`}. Choose the right file or correct its name.`);
  }
  if (type === 'application/pdf') return { contentType: type, data: bytes };
  return reencode(bytes, type);
}

async function reencode(bytes: Buffer, type: Exclude<AllowedType, 'application/pdf'>): Promise<Accepted> {
  try {
    const meta = await sharp(bytes, { limitInputPixels: false }).metadata();
    if (!meta.width || !meta.height) throw new UploadRefused(422, 'The image could not be read. Save it again and retry.');
    if (meta.width * meta.height > MAX_PIXELS) throw new UploadRefused(413, `The image is too large (${meta.width} × ${meta.height} pixels; at most ${MAX_PIXELS / 1_000_000} megapixels).`);
    // SECURITY: a fresh encode from the pixels: no metadata is copied (sharp drops it unless asked).
    const pipeline = sharp(bytes, { limitInputPixels: MAX_PIXELS }).rotate();
    const encoded = type === 'image/jpeg' ? pipeline.jpeg({ quality: 90, mozjpeg: true }) : type === 'image/png' ? pipeline.png() : pipeline.webp({ quality: 90 });
    const { data, info } = await encoded.toBuffer({ resolveWithObject: true });
    const thumb = await sharp(data).resize({ width: THUMB_SIZE, height: THUMB_SIZE, fit: 'inside', withoutEnlargement: true }).webp({ quality: 70 }).toBuffer();
    return { contentType: type, data, thumb, width: info.width, height: info.height };
  } catch (err) {
    if (err instanceof UploadRefused) throw err;
    throw new UploadRefused(422, 'The image could not be read. Save it again and retry.');
  }
}

/** The largest logo kept: it is scaled down to fit, never up. */
export const LOGO_BOX = { width: 600, height: 200 } as const;

/**
 * A practice logo: a JPEG, PNG or WebP image (checked like any upload), re-encoded as a PNG that
 * fits LOGO_BOX, with no metadata.
 */
export async function processLogo(bytes: Buffer, clientName: string): Promise<Buffer> {
  const accepted = await processUpload(bytes, clientName);
  if (accepted.contentType === 'application/pdf') throw new UploadRefused(415, 'A logo is an image: upload a JPEG, PNG or WebP file.');
  try {
    return await sharp(accepted.data).resize({ ...LOGO_BOX, fit: 'inside', withoutEnlargement: true }).png({ compressionLevel: 9, palette: true }).toBuffer();
  } catch {
    throw new UploadRefused(422, 'The image could not be read. Save it again and retry.');
  }
}
