import type { RequestHandler } from 'express';
import type { Config } from '../config/env.js';

/** GET / — the start page. */
export function index(config: Config): RequestHandler {
  return (_req, res) => {
    res.render('home/index', { title: 'Enamel', demo: config.seedDemo });
  };
}
