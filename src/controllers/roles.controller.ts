import type { Request, RequestHandler, Response } from 'express';
import type { Clock, Meta } from '../shared/types.js';
import type { Db } from '../db/tenant.js';
import { changeRole, createRole, roleForEdit, rolesMatrix, type RoleView } from '../services/roles/roles.service.js';
import { formProblems, resultProblems, type FormProblems } from '../validation/text.js';
import { roleForm } from '../validation/users.schema.js';
import { actorOf, idOf, requestMeta, restoredForm, RESTORED_NOTICE } from './request.js';

export interface RolesControllerDeps {
  db: Db;
  clock: Clock;
}

/** The roles page (permission matrix), new roles and role edits. */
export function rolesController(d: RolesControllerDeps) {
  const meta = (req: Request): Meta => requestMeta(req, d.clock);
  const rawForm = (req: Request) => {
    const b = (req.body ?? {}) as Record<string, unknown>;
    const list = Array.isArray(b.permissions) ? b.permissions : b.permissions === undefined ? [] : [b.permissions];
    return { name: typeof b.name === 'string' ? b.name : '', description: typeof b.description === 'string' ? b.description : '', permissions: list.filter((x): x is string => typeof x === 'string') };
  };
  /** The role form again, with each error beside its field and what was typed. */
  const again = async (res: Response, status: number, role: RoleView | undefined, problems: FormProblems, form: ReturnType<typeof rawForm>) => {
    const actor = actorOf(res);
    const matrix = await rolesMatrix(d.db, actor);
    res.status(status).render('roles/edit', { title: role ? role.name : 'New role', slug: actor.slug, actor, role, permissions: matrix.permissions, form, csrfToken: res.locals.csrfToken, ...problems });
  };

  return {
    /** GET /p/:slug/roles */
    index: (async (req, res) => {
      const actor = actorOf(res);
      const matrix = await rolesMatrix(d.db, actor);
      const saved = req.query.saved === '1';
      res.render('roles/index', { title: 'Roles', slug: actor.slug, actor, matrix, notice: saved ? 'Role saved. It applies to its holders from their next click.' : undefined });
    }) satisfies RequestHandler,

    /** GET /p/:slug/roles/new */
    new: (async (req, res) => {
      const actor = actorOf(res);
      const matrix = await rolesMatrix(d.db, actor);
      const typed = restoredForm(req, `/p/${actor.slug}/roles`, d.clock);
      const form = typed ? { name: typed.text('name', 60), description: typed.text('description', 200), permissions: typed.list('permissions') } : { name: '', description: '', permissions: [] };
      res.render('roles/edit', { title: 'New role', slug: actor.slug, actor, role: undefined, permissions: matrix.permissions, form, csrfToken: res.locals.csrfToken, error: undefined, errors: {}, notice: typed ? RESTORED_NOTICE : undefined });
    }) satisfies RequestHandler,

    /** POST /p/:slug/roles */
    create: (async (req, res) => {
      const actor = actorOf(res);
      const parsed = roleForm.safeParse(req.body ?? {});
      if (!parsed.success) return again(res, 400, undefined, formProblems(parsed.error), rawForm(req));
      const result = await createRole(d.db, actor, parsed.data, meta(req));
      if (result.ok) return res.redirect(303, `/p/${actor.slug}/roles?saved=1`);
      await again(res, result.refused ? 403 : 400, undefined, resultProblems(result), rawForm(req));
    }) satisfies RequestHandler,

    /** GET /p/:slug/roles/:id */
    edit: (async (req, res) => {
      const actor = actorOf(res);
      const role = await roleForEdit(d.db, actor, idOf(req, 'role'));
      const matrix = await rolesMatrix(d.db, actor);
      const typed = restoredForm(req, `/p/${actor.slug}/roles/${role.id}`, d.clock);
      const form = typed ? { name: typed.text('name', 60), description: typed.text('description', 200), permissions: typed.list('permissions') } : { name: role.name, description: role.description, permissions: role.permissions };
      res.render('roles/edit', { title: role.name, slug: actor.slug, actor, role, permissions: matrix.permissions, form, csrfToken: res.locals.csrfToken, error: undefined, errors: {}, notice: typed ? RESTORED_NOTICE : undefined });
    }) satisfies RequestHandler,

    /** POST /p/:slug/roles/:id */
    update: (async (req, res) => {
      const actor = actorOf(res);
      const id = idOf(req, 'role');
      const role = await roleForEdit(d.db, actor, id);
      const parsed = roleForm.safeParse(req.body ?? {});
      if (!parsed.success) return again(res, 400, role, formProblems(parsed.error), rawForm(req));
      const result = await changeRole(d.db, actor, id, parsed.data, meta(req));
      if (result.ok) return res.redirect(303, `/p/${actor.slug}/roles?saved=1`);
      await again(res, result.refused ? 403 : 400, role, resultProblems(result), rawForm(req));
    }) satisfies RequestHandler,
  };
}
