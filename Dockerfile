# syntax=docker/dockerfile:1
# Floodgate image: one image for the API, the workers and the one-shot migration (the command picks the role).
#   docker build -t floodgate .            (docker-compose.yml builds it for you)
# No secret is baked in: JWT_SECRET, STRIPE_SECRET_KEY, ... come from the environment at run time.

# ---- build: compile TypeScript to dist/ and copy the Lua scripts and SQL migrations next to it ----------------
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm run build

# ---- runtime: production dependencies and dist/ only, as a non-root user --------------------------------------
FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
# The `outbox` mailer writes ticket e-mails as files; give the app user a place to write them.
RUN mkdir -p /app/.outbox && chown node:node /app/.outbox
USER node
EXPOSE 3000
# A larger V8 young generation halves GC time on the booking path (bench/results/hold-*.md).
CMD ["node", "--max-semi-space-size=64", "dist/api/main.js"]
