import { z } from 'zod';
import { form } from './text.js';
import { isPermission, type Permission } from '../permissions.js';

/** Checkbox groups arrive as nothing, one string or many strings: always an array here. */
const many = <T extends z.ZodType>(item: T) => z.preprocess((v) => (v === undefined ? [] : Array.isArray(v) ? v : [v]), z.array(item).max(100));

const uuid = z.uuid('Choose from the list.');


export const inviteForm = form({
  displayName: z.string().trim().min(1, 'Enter the person’s name.').max(120, 'The name is too long (120 characters at most).'),
  email: z.string().trim().toLowerCase().max(254).pipe(z.email('Enter a valid email address.')),
  roleIds: many(uuid).refine((ids) => ids.length > 0, 'Choose at least one role.'),
  // Staff see only the patients of their locations: an account with none would find nobody.
  locationIds: many(uuid).refine((ids) => ids.length > 0, 'Choose at least one location: staff see only the patients of their locations.'),
});

export const accessForm = form({
  roleIds: many(uuid),
  locationIds: many(uuid),
});

export const roleForm = form({
  name: z.string().trim().min(1, 'Give the role a name.').max(60, 'The name is too long (60 characters at most).'),
  description: z.string().trim().max(200, 'The description is too long (200 characters at most).').default(''),
  permissions: many(z.string().refine(isPermission, 'Choose permissions from the list.')).transform((v) => [...new Set(v)] as Permission[]),
});

/** A new password typed twice (invitations, password reset); a mismatch is the second field's error. */
export const invitationForm = form({
  password: z.string().min(1, 'Choose a password.').max(1024),
  confirm: z.string().max(1024),
}).refine((f) => typeof f.password !== 'string' || f.password === '' || f.password === f.confirm, { message: 'The two passwords are not the same.', path: ['confirm'] });

export const invitationParams = z.object({ token: z.string().regex(/^[A-Za-z0-9_-]{43}$/) });


