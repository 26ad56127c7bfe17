import { Router } from 'express';
import type { Config } from '../config/env.js';
import type { Db } from '../db/tenant.js';
import * as health from '../controllers/health.controller.js';
import * as home from '../controllers/home.controller.js';
import * as practices from '../controllers/practices.controller.js';
import * as wellKnown from '../controllers/well-known.controller.js';
import { publicRoute } from './access.js';

export interface RouteDeps {
  config: Config;
  db: Db;
}

/**
 * The whole route table. Every route's first handler declares its access (routes/access.ts);
 * test/http/route-inventory.test.ts fails on any route that does not.
 */
export function buildRouter({ config, db }: RouteDeps): Router {
  const r = Router();

  r.get('/healthz', publicRoute('liveness probe for the container runtime'), health.live);
  r.get('/readyz', publicRoute('readiness probe for the load balancer'), health.ready(db));
  r.get('/.well-known/security.txt', publicRoute('RFC 9116 vulnerability-report contact'), wellKnown.securityTxt(config));

  r.get('/', publicRoute('start page, shows no practice data'), home.index(config));
  r.get('/p/:slug', publicRoute('practice front page: business name, addresses, phone; no PHI'), practices.show(db));

  return r;
}
