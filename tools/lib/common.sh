# Shared by tools/run and tools/test (sourced, not run): install what is missing from Debian,
# then configure and build with meson/ninja. Idempotent: a second run installs and rebuilds
# nothing that is already there.
set -euo pipefail

RTPX_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
RTPX_BUILD=${RTPX_BUILD_DIR:-$RTPX_ROOT/build}

# Everything rtpxd needs to build and run (Debian 12 package names).
RUN_PACKAGES=(
  build-essential pkg-config meson ninja-build
  libdpdk-dev dpdk
  libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc grpc-proto libabsl-dev
  libsrtp2-dev libopus-dev libbcg729-dev libspandsp-dev libspeexdsp-dev libsoxr-dev libssl-dev
  libtomlplusplus-dev libspdlog-dev libfmt-dev libcli11-dev libcpp-httplib-dev
  iproute2 ethtool iputils-ping curl
)
# What the tests and the bench harness add: Catch2, pytest, Prometheus' promtool, tshark,
# clang-format, clang with libFuzzer, sipp (a real SIP peer), dpdk-testpmd and rtpengine (the
# bench's baselines), matplotlib (bench plots), Kamailio (its rtpengine module, rtpengine.so,
# drives the relay over NG in test_kamailio.py) and iptables (that test's A<->B block).
TEST_PACKAGES=(
  catch2 python3 python3-pytest prometheus tshark clang-format clang libclang-rt-14-dev
  sip-tester dpdk-dev rtpengine-daemon python3-matplotlib kamailio iptables
)

rtpx_need_root() {
  if [ "$(id -u)" -ne 0 ]; then
    echo "$(basename "$0"): run as root (DPDK, network namespaces and apt need it)" >&2
    exit 1
  fi
}

rtpx_install() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "==> installing: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" \
      >/tmp/rtpx-apt.log 2>&1 || { tail -30 /tmp/rtpx-apt.log; exit 1; }
  fi
}

rtpx_build() {
  if [ ! -f "$RTPX_BUILD/build.ninja" ]; then
    echo "==> meson setup $RTPX_BUILD"
    meson setup "$RTPX_BUILD" "$RTPX_ROOT" --buildtype=debugoptimized >/dev/null
  fi
  echo "==> building"
  ninja -C "$RTPX_BUILD" | grep -vE '^\[[0-9]+/[0-9]+\]' || true
  ninja -C "$RTPX_BUILD" >/dev/null  # fail here if the build failed above
}
