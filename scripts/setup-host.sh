#!/usr/bin/env bash
# Installs the host packages tskit's tests and quick start use (Debian/Ubuntu). tskit
# itself needs none of them to build images; they are the peers it is tested against and
# the tools the fixtures are made with. Safe to run again: only missing packages install.
set -euo pipefail
packages=(
  qemu-system-x86 qemu-utils ovmf seabios ipxe-qemu   # booting images under TCG
  docker-registry                                     # CNCF distribution, the OCI registry peer
  busybox-static runc libseccomp2 kmod cpio           # fixture userland, kernel module tooling
  skopeo umoci                                        # independent OCI tools the tests compare against
  openssl apache2-utils                               # registry auth test peers (token certs, htpasswd)
  libxml2-utils                                       # xmllint: JUnit reports checked against an XML Schema
  dosfstools mtools fdisk gdisk genisoimage xorriso   # disk layout peers (fsck.fat, mdir, sfdisk, sgdisk, isoinfo); fixture boot loaders
  python3-pip                                         # the AWS peer, moto, comes from PyPI
  squashfs-tools erofs-utils                          # independent readers of kernel+squashfs / kernel+erofs (unsquashfs, fsck.erofs)
  gcc make flex bison bc libelf-dev binutils          # the fixture kernel with built-in root drivers (test/fixtures/kernel), readelf
  iproute2 util-linux                                 # --networking tap/bridge tests in their own namespaces (ip, unshare)
  qemu-system-arm qemu-efi-aarch64                    # run qemu --arch arm64 (qemu-system-aarch64, AAVMF)
)
# the arm64 fixtures are made from Debian's arm64 packages (apt-get download PKG:arm64)
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo dpkg --add-architecture arm64
  $sudo apt-get update -qq
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# AWS test peer: moto's server (EC2, EBS direct APIs, S3). The tests put their own proxy in
# front of it for what moto lacks (test/aws-peer/). Quiet and quick when already installed.
if ! command -v moto_server >/dev/null 2>&1 || ! python3 -c 'import moto, flask, flask_cors, sys; sys.exit(moto.__version__ != "5.2.1")' >/dev/null 2>&1; then
  # Debian's own python3 refuses pip installs (PEP 668) unless told; a pyenv/venv python does not need telling.
  python3 -m pip install --quiet --disable-pip-version-check "moto[server]==5.2.1" >/dev/null 2>&1 ||
    python3 -m pip install --quiet --disable-pip-version-check --break-system-packages "moto[server]==5.2.1" >/dev/null
  command -v moto_server >/dev/null 2>&1 || { echo "setup-host: moto_server is not on PATH after pip install (add pip's script directory to PATH)" >&2; exit 1; }
fi
