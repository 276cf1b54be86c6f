# The robustsbi image (cpu): workers, the dashboard and every other robustsbi command.
#   docker build -f deploy/worker.Dockerfile --build-arg BUILD_ID=$(git rev-parse --short=12 HEAD) -t robustsbi:cpu .
# BUILD_ID becomes ROBUSTSBI_BUILD_ID, the build ID the workers announce to Temporal (worker
# versioning): the image has no git checkout to derive it from.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# No optional packages here: tfjs-node is added in the runtime stage, the gpu build is its own image.
RUN npm ci --omit=optional
COPY tsconfig.json ./
COPY bin bin
COPY cli cli
COPY infra infra
COPY sbi sbi
COPY results results
COPY sweeps sweeps
COPY workflows workflows
COPY activities activities
COPY workers workers
RUN npx tsc -p tsconfig.json && npm prune --omit=dev --omit=optional

FROM node:20-bookworm-slim
WORKDIR /app
COPY --from=build /app/package.json /app/package-lock.json ./
COPY --from=build /app/node_modules node_modules
COPY --from=build /app/dist dist
COPY --from=build /app/bin bin
# The VAE task's decoder weights, found from dist/ by walking up to sbi/tasks/data.
COPY sbi/tasks/data sbi/tasks/data
COPY sweeps/*.json sweeps/
# The native CPU backend (libtensorflow); the worker falls back to wasm where it does not load.
RUN npm install --no-save --omit=dev @tensorflow/tfjs-node@4.22.0 \
  && mkdir -p /app/.data && chown node /app/.data
ARG BUILD_ID=""
ENV ROBUSTSBI_BUILD_ID=${BUILD_ID}
USER node
EXPOSE 9464 8765
ENTRYPOINT ["node", "/app/bin/robustsbi.js"]
CMD ["worker", "--queue", "cpu"]
