# The robustsbi gpu worker: tfjs-node-gpu 4.22 on CUDA 11.8 / cuDNN 8 (what its libtensorflow 2.9 was
# built against). Run it with `robustsbi worker --queue gpu` next to cpu workers.
#   docker build -f deploy/worker-gpu.Dockerfile --build-arg BUILD_ID=$(git rev-parse --short=12 HEAD) -t robustsbi:gpu .
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
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

FROM nvidia/cuda:11.8.0-cudnn8-runtime-ubuntu22.04
# Node 20 from the official binary tarball (Ubuntu's is older).
ARG NODE_VERSION=20.19.5
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl xz-utils \
  && curl -fsSL https://nodejs.org/dist/v${NODE_VERSION}/node-v${NODE_VERSION}-linux-x64.tar.xz \
     | tar -xJ -C /usr/local --strip-components=1 \
  && apt-get purge -y curl xz-utils && rm -rf /var/lib/apt/lists/* \
  && useradd --create-home node
WORKDIR /app
COPY --from=build /app/package.json /app/package-lock.json ./
COPY --from=build /app/node_modules node_modules
COPY --from=build /app/dist dist
COPY --from=build /app/bin bin
# The VAE task's decoder weights, found from dist/ by walking up to sbi/tasks/data.
COPY sbi/tasks/data sbi/tasks/data
RUN npm install --no-save --omit=dev @tensorflow/tfjs-node-gpu@4.22.0 \
  && mkdir -p /app/.data && chown node /app/.data
ARG BUILD_ID=""
ENV ROBUSTSBI_BUILD_ID=${BUILD_ID}
# The gpu worker fails at start when CUDA is not there, rather than training on the CPU unnoticed.
ENV ROBUSTSBI_BACKEND=tfjs-node-gpu
USER node
EXPOSE 9464
ENTRYPOINT ["node", "/app/bin/robustsbi.js"]
CMD ["worker", "--queue", "gpu"]
