# Vigil image: one image, every role (`vigil start|collector|sink|query`), chosen by the command.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json turbo.json tsconfig.base.json tsconfig.json ./
COPY packages ./packages
COPY scripts ./scripts
RUN npm ci --no-audit --no-fund && npx turbo run build --output-logs=errors-only && npm prune --omit=dev

FROM node:20-bookworm-slim
# JSON logs for the log collector, also under `docker run -t`.
ENV NODE_ENV=production VIGIL_HOST=0.0.0.0 VIGIL_DATA_DIR=/var/lib/vigil VIGIL_LOG_FORMAT=json
WORKDIR /app
COPY --from=build /app /app
RUN useradd --system --home /var/lib/vigil vigil && mkdir -p /var/lib/vigil && chown vigil /var/lib/vigil
USER vigil
VOLUME /var/lib/vigil
ENTRYPOINT ["node", "/app/packages/app/dist/cli/main.js"]
CMD ["start"]
