import { z } from 'zod';
import { form } from './text.js';

/** The sign-in form. Lengths only: the password is never trimmed or otherwise changed. */
export const signInForm = form({
  email: z.string().trim().min(3).max(254),
  password: z.string().min(1).max(1024),
});

/** A second-factor code: 6 digits (spaces allowed) or a recovery code. */
export const codeForm = form({
  code: z.string().trim().min(6).max(40),
});
