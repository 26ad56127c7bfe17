import { accessOf } from '../../src/routes/access.js';
import { buildRouter } from '../../src/routes/index.js';

interface Layer {
  route?: { path: string; methods: Record<string, boolean>; stack: { handle: unknown }[] };
}

/** Every route of the real route table: method, path, and its access declaration. */
export function routeTable(t: { db: Parameters<typeof buildRouter>[0]['db'] }, config: Parameters<typeof buildRouter>[0]['config']) {
  const router = buildRouter({ config, db: t.db, keyring: undefined as never, files: undefined as never, fileUrlKey: Buffer.alloc(32), clock: Date.now });
  return (router.stack as unknown as Layer[])
    .filter((l) => l.route)
    .flatMap((l) => Object.keys(l.route!.methods).map((m) => ({ method: m.toUpperCase(), path: l.route!.path, access: accessOf(l.route!.stack[0]?.handle) })));
}
