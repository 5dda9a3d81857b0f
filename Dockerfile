# Container Labs: the course site and the lab server in one image (issue 7).
#
# Where an image registry is reachable, this file builds everything itself:
#   docker compose up -d --build            (or: docker build -t containerlabs/server:local .)
# Offline (this machine's images only, `docker build --network none`):
#   npm run image                           (deploy/build-image.ts)
# assembles a context with the app already built (.prebuilt/app) and a Node 24 binary
# (.prebuilt/node/bin/node), and builds this same file with BUILD_IMAGE and BASE set to
# the lab base image (containerlabs/base:<tag>, Debian bookworm).
#
# The server starts lab hosts on the engine whose socket is mounted at
# /var/run/docker.sock (or DOCKER_HOST): that is root on that engine. See compose.yaml.

ARG BUILD_IMAGE=node:24-bookworm
ARG BASE=node:24-bookworm-slim

# ---- build: install, build the site, keep only what the server runs -------------------
# (`npm ci` installs the root package, the site's build tools, and the server workspace;
# deploy/assemble.ts keeps the server package's dependencies only.)
FROM ${BUILD_IMAGE} AS build
# Lets deploy/build-image.ts remove this stage's leftover image after a build.
LABEL containerlabs.image=server-build
WORKDIR /src
COPY . .
RUN set -eu; \
    if [ -f .prebuilt/app/package.json ]; then \
      echo "prebuilt context: using .prebuilt/app and .prebuilt/node as they are"; \
    else \
      npm ci --no-audit --no-fund --loglevel=error; \
      npm run build --silent; \
      rm -rf .prebuilt; mkdir -p .prebuilt/node/bin; \
      node deploy/assemble.ts .prebuilt/app; \
    fi

# ---- runtime ------------------------------------------------------------------------------
FROM ${BASE}
# The server's own user (not root, outside every range lab hosts' uids come from: see
# CL_LAB_UIDS). Reaching the engine socket
# takes its group: compose's `group_add` (DOCKER_GID), or `docker run --group-add`.
ARG APP_UID=10001
RUN set -eu; \
    grep -q '^containerlabs:' /etc/group || echo "containerlabs:x:${APP_UID}:" >> /etc/group; \
    grep -q '^containerlabs:' /etc/passwd || \
      echo "containerlabs:x:${APP_UID}:${APP_UID}:Container Labs:/app:/usr/sbin/nologin" >> /etc/passwd; \
    install -d -o "${APP_UID}" -g "${APP_UID}" -m 0700 /var/lib/container-labs
# Empty in the registry build (the base image has Node); the Node binary offline.
COPY --from=build /src/.prebuilt/node /opt/node
COPY --from=build /src/.prebuilt/app /app
ENV PATH=/opt/node/bin:$PATH \
    NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=4321 \
    CL_SITE_DIR=/app/dist \
    CL_DATA_DIR=/var/lib/container-labs
# The session store (sessions.db): compose mounts a volume here, so a new container of a
# new image takes the sessions back.
VOLUME /var/lib/container-labs
WORKDIR /app
USER ${APP_UID}:${APP_UID}
EXPOSE 4321
STOPSIGNAL SIGTERM
# Healthy = the server answers and its container engine is reachable.
HEALTHCHECK --interval=5s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "deploy/healthcheck.ts"]
ENTRYPOINT ["/app/deploy/entrypoint.sh"]
CMD ["node", "server/src/main.ts"]
