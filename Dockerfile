# Ferry's OCI image: `ferry daemon` (and `ferry fuse-holder`) for the DaemonSets in deploy/daemonset.yaml.
# Build stage: Node 24 with compilers for the two native modules; runtime stage: Debian 12 with only the runtime
# packages, the Node 24 binary, dist/ and production node_modules. scripts/build-image.sh builds the same
# layout without pulling a base image (RUNTIME_PACKAGES and the paths below are read from here by that script).
#
#   docker build -t localhost/ferry:0.1.0 .        # or: buildah bud -t localhost/ferry:0.1.0 .
ARG NODE_VERSION=24.21.0

FROM docker.io/library/node:${NODE_VERSION}-bookworm AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error
COPY tsconfig.json tsconfig.build.json ./
COPY src src
RUN npm run build && npm prune --omit=dev --no-audit --no-fund

FROM docker.io/library/debian:bookworm-slim
# libstdc++6: the node binary links it; libfuse2: fuse-native's engine; mount: mount(8) -o fd= for the raw engine
# and the holder; ca-certificates: registries behind a private CA (NODE_EXTRA_CA_CERTS, see deploy/README.md);
# attr: setfattr for the xattrs and opaque dirs of materialised layers.
ARG RUNTIME_PACKAGES="ca-certificates libfuse2 libstdc++6 mount attr"
RUN apt-get update \
  && apt-get install -y --no-install-recommends ${RUNTIME_PACKAGES} \
  && rm -rf /var/lib/apt/lists/*
COPY --from=build /usr/local/bin/node /usr/local/bin/node
COPY --from=build /src/package.json /opt/ferry/package.json
COPY --from=build /src/node_modules /opt/ferry/node_modules
COPY --from=build /src/dist /opt/ferry/dist
COPY bin /opt/ferry/bin
COPY proto /opt/ferry/proto
RUN ln -s /opt/ferry/bin/ferry.js /usr/local/bin/ferry
ENV NODE_ENV=production
ENTRYPOINT ["ferry"]
CMD ["daemon"]
