#!/usr/bin/env bash
# The quick start, end to end on a fresh machine of this kind (Debian 12):
#   1. host packages (QEMU, the registry, the fixture tools) and npm ci (Node 24 included),
#   2. the fixture images, made from Debian packages and served at localhost:5000,
#   3. tskit build of templates/hello.yml, then tskit run qemu with the console streaming,
#      stopping when the container started by runc prints HELLO-OK.
# The registry is stopped at the end; the images stay in tskit's cache, so later builds of
# the same YAML work without it.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

step "host packages (scripts/setup-host.sh)"
bash scripts/setup-host.sh
step "npm ci (installs Node 24 for the project's scripts and npx, and builds tskit)"
npm ci --no-audit --no-fund
step "fixture images served at localhost:5000"
bash test/fixtures/serve-fixtures.sh --port 5000
trap 'bash test/fixtures/serve-fixtures.sh --stop >/dev/null 2>&1 || true' EXIT
step "npx tskit build --format kernel+initrd --name hello --dir out templates/hello.yml"
npx tskit build --format kernel+initrd --name hello --dir out templates/hello.yml
step "npx tskit run qemu --wait-for 'HELLO-OK' --timeout 90s out/hello"
npx tskit run qemu --wait-for 'HELLO-OK' --timeout 90s out/hello
