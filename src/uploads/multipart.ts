import type { RequestHandler } from 'express';
import multer from 'multer';
import { UPLOAD_LIMITS } from './pipeline.js';

/**
 * Parses one multipart file field (`file`) into memory under hard limits (15 MB, one file, a few
 * small fields). It runs before the CSRF check on upload routes, because the token is a form field
 * of the multipart body; a limit breach is left in res.locals.uploadError for the controller to
 * answer with a form error after the CSRF check.
 */
const single = multer({ storage: multer.memoryStorage(), limits: UPLOAD_LIMITS }).single('file');

export const parseUpload: RequestHandler = (req, res, next) => {
  single(req, res, (err: unknown) => {
    if (!err) return next();
    if (err instanceof multer.MulterError) {
      res.locals.uploadError = err.code === 'LIMIT_FILE_SIZE' ? 413 : 400;
      return next();
    }
    next(err);
  });
};

/** The form error for a multipart limit breach that parseUpload left in res.locals.uploadError. */
export function uploadErrorMessage(code: 400 | 413): string {
  return code === 413 ? 'The file is larger than 15 MB.' : 'The upload could not be read. Choose one file and try again.';
}

/** What the user reads when the file store itself failed (full, read-only): nothing was saved, and whom to tell. */
export const STORAGE_FAILED_MESSAGE = 'The document could not be stored; nothing was saved — tell your administrator.';
