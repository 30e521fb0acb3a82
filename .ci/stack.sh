#!/usr/bin/env bash
# The real local stack bakery builds and tests against: Docker Engine (containerd image store)
# with buildx, a distribution registry on 127.0.0.1, QEMU binfmt handlers, and locally built
# base images (no image is ever pulled from outside).
#
#   .ci/stack.sh install   apt packages (idempotent)
#   .ci/stack.sh start     daemons + binfmt + base images (idempotent)
#   .ci/stack.sh stop      stop what start started
#   .ci/stack.sh status    one line per component
#   .ci/stack.sh engine2-start | engine2-stop
#                          a second Docker engine on this machine (own data-root, exec-root, socket,
#                          containerd and bridge) with docker context `bakery-e2`, for fan-out tests
set -euo pipefail

STATE=${BAKERY_STACK_STATE:-/var/lib/bakery-stack}
REGISTRY_ADDR=${BAKERY_REGISTRY_ADDR:-127.0.0.1:5000}
BASE_REF=${REGISTRY_ADDR}/base/busybox:1.35
GO_REF=${REGISTRY_ADDR}/base/golang:1.19
DOCKER=/usr/bin/docker   # Debian's docker-cli, the client that matches the engine
PLATFORMS="linux/amd64 linux/arm64 linux/arm/v7"

log() { printf '[stack] %s\n' "$*" >&2; }
die() { printf '[stack] error: %s\n' "$*" >&2; exit 1; }

debian_major() { . /etc/os-release; echo "${VERSION_ID%%.*}"; }
debian_codename() { . /etc/os-release; echo "$VERSION_CODENAME"; }
# the machine's own Debian mirror (whatever apt is set up with), never a hard-coded host
debian_mirror() {
  { grep -hE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}'
    grep -hE '^deb ' /etc/apt/sources.list 2>/dev/null | awk '{print $2}'; } | grep -v -- '-security' | head -n1
}

install() {
  export DEBIAN_FRONTEND=noninteractive
  local need=()
  local major; major=$(debian_major)
  if [ "$major" = 12 ]; then
    if [ ! -f /etc/apt/sources.list.d/bakery-trixie.sources ]; then
      log "adding trixie (pinned at 100) for Docker 26"
      cat >/etc/apt/sources.list.d/bakery-trixie.sources <<SRC
Types: deb
URIs: $(debian_mirror)
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
      cat >/etc/apt/preferences.d/bakery-trixie <<PIN
Package: *
Pin: release n=trixie
Pin-Priority: 100
PIN
      rm -f /var/lib/apt/lists/lock
      apt-get update -qq
    fi
    docker_pkgs=(docker.io/trixie docker-cli/trixie docker-buildx/trixie containerd/trixie runc tini)
  else
    docker_pkgs=(docker.io docker-cli docker-buildx containerd runc tini)
  fi
  for p in docker.io docker-cli docker-buildx containerd runc tini docker-registry qemu-user-static \
           apache2-utils openssl skopeo curl iproute2; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need+=("$p")
  done
  if [ ${#need[@]} -gt 0 ]; then
    log "installing: ${need[*]}"
    [ -d /var/lib/apt/lists ] && ls /var/lib/apt/lists/*_Packages >/dev/null 2>&1 || apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${docker_pkgs[@]}" docker-registry qemu-user-static \
      apache2-utils openssl skopeo curl iproute2 >/dev/null \
      || { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${docker_pkgs[@]}" \
             docker-registry qemu-user-static apache2-utils openssl skopeo curl iproute2 >/dev/null; }
  fi
  # the docker.io postinst may try to start a service manager that is not here; the daemons are ours to start
  mkdir -p /etc/docker
  local want='{"features":{"containerd-snapshotter":true},"iptables":false,"ip6tables":false}'
  if [ "$(cat /etc/docker/daemon.json 2>/dev/null)" != "$want" ]; then
    echo "$want" >/etc/docker/daemon.json
  fi
  log "installed: $(dpkg-query -W -f='docker.io ${Version}' docker.io), $(dpkg-query -W -f='docker-buildx ${Version}' docker-buildx)"
}

wait_for() { # seconds, description, command...
  local n=$1 what=$2; shift 2
  for _ in $(seq 1 "$n"); do "$@" >/dev/null 2>&1 && return 0; sleep 1; done
  die "$what did not come up in ${n}s"
}

start_binfmt() {
  mountpoint -q /proc/sys/fs/binfmt_misc || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
  local f name line
  for f in /usr/lib/binfmt.d/qemu-*.conf; do
    [ -e "$f" ] || continue
    line=$(grep -v '^#' "$f" | head -n1)
    name=$(printf '%s' "$line" | cut -d: -f2)
    [ -e "/proc/sys/fs/binfmt_misc/$name" ] && continue
    printf '%s' "$line" >/proc/sys/fs/binfmt_misc/register || log "could not register $name"
  done
}

start_dockerd() {
  if $DOCKER info >/dev/null 2>&1; then return 0; fi
  mkdir -p "$STATE"
  log "starting dockerd"
  # cgroup v1 hosts: make sure the hierarchy dockerd expects is mounted
  nohup /usr/sbin/dockerd --host unix:///var/run/docker.sock >"$STATE/dockerd.log" 2>&1 &
  echo $! >"$STATE/dockerd.pid"
  wait_for 60 dockerd $DOCKER info
}

registry_config() {
  local dir=$1 port=$2 extra=${3:-}
  cat <<CFG
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $dir
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
$extra
CFG
}

start_registry() {
  if curl -fsS "http://$REGISTRY_ADDR/v2/" >/dev/null 2>&1; then return 0; fi
  mkdir -p "$STATE/registry"
  registry_config "$STATE/registry" "${REGISTRY_ADDR##*:}" >"$STATE/registry.yml"
  log "starting registry on $REGISTRY_ADDR"
  nohup /usr/bin/docker-registry serve "$STATE/registry.yml" >"$STATE/registry.log" 2>&1 &
  echo $! >"$STATE/registry.pid"
  wait_for 30 registry curl -fsS "http://$REGISTRY_ADDR/v2/"
}

have_ref() { # repo:tag exists in the local registry
  local repo=${1#*/}; repo=${repo%:*}; local tag=${1##*:}
  curl -fs -o /dev/null -H 'Accept: application/vnd.oci.image.index.v1+json' -H 'Accept: application/vnd.oci.image.manifest.v1+json' -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
    -H 'Accept: application/vnd.docker.distribution.manifest.list.v2+json' \
    "http://$REGISTRY_ADDR/v2/$repo/manifests/$tag"
}

deb_arch() { case $1 in linux/amd64) echo amd64;; linux/arm64) echo arm64;; linux/arm/v7) echo armhf;; *) die "no deb arch for $1";; esac; }

apt_download() { # arch package dest-dir
  local arch=$1 pkg=$2 dest=$3 lists="$STATE/apt/$1"
  mkdir -p "$lists/lists/partial" "$dest"
  # only the machine's own release (no security/updates/trixie lists): small, and one Packages file per arch
  mkdir -p "$STATE/apt"
  printf 'deb %s %s main\n' "$(debian_mirror)" "$(debian_codename)" >"$STATE/apt/sources.list"
  local opts=(-oAPT::Architecture="$arch" -oAPT::Architectures="$arch" -oDir::State::Lists="$lists/lists"
              -oDir::Etc::SourceList="$STATE/apt/sources.list" -oDir::Etc::SourceParts=/nonexistent
              -oDir::Cache="$STATE/apt/cache-$arch" -oDebug::NoLocking=1 -oAPT::Sandbox::User=root)
  mkdir -p "$STATE/apt/cache-$arch/archives/partial"
  if [ -z "$(ls "$lists/lists" 2>/dev/null | grep _Packages || true)" ]; then
    apt-get "${opts[@]}" update -qq || { sleep 5; apt-get "${opts[@]}" update -qq; }
  fi
  (cd "$dest" && apt-get "${opts[@]}" download -qq "$pkg")
}

build_base_images() {
  if have_ref "$BASE_REF" && have_ref "$GO_REF"; then return 0; fi
  local ctx="$STATE/base-ctx"
  rm -rf "$ctx"; mkdir -p "$ctx"
  local applets=""
  for p in $PLATFORMS; do
    local a; a=$(deb_arch "$p")
    apt_download "$a" busybox-static "$ctx/deb-$a"
    local root="$ctx/rootfs/${p//\//_}"
    mkdir -p "$root/bin" "$root/tmp" "$root/etc" "$root/root"
    dpkg-deb -x "$ctx"/deb-"$a"/busybox-static_*.deb "$ctx/x-$a"
    cp "$ctx/x-$a/bin/busybox" "$root/bin/busybox"
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$root/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
  done
  # the applet list is the same for every architecture of one version: ask the native one
  local native; native=$(dpkg --print-architecture)
  applets=$("$ctx/x-$native/bin/busybox" --list)
  for root in "$ctx"/rootfs/*; do
    for a in $applets; do [ "$a" = busybox ] || ln -sf busybox "$root/bin/$a"; done
  done
  cat >"$ctx/Dockerfile" <<'DF'
FROM scratch
ARG TARGETOS TARGETARCH TARGETVARIANT
COPY rootfs/${TARGETOS}_${TARGETARCH}${TARGETVARIANT:+_}${TARGETVARIANT}/ /
ENV PATH=/bin
CMD ["/bin/sh"]
DF
  log "building $BASE_REF for $PLATFORMS"
  $DOCKER buildx build --builder default --provenance=false --platform "${PLATFORMS// /,}" \
    -t "$BASE_REF" --push "$ctx" >"$STATE/base-build.log" 2>&1 || { cat "$STATE/base-build.log" >&2; die "base image build failed"; }

  # a Go toolchain for the build platform only, from Debian's packages, for cross-compiling stages
  local goctx="$STATE/go-ctx"; rm -rf "$goctx"; mkdir -p "$goctx"
  local gopkg; gopkg=$(apt-cache depends golang-go 2>/dev/null | awk '/Depends: golang-[0-9.]+-go/{print $2; exit}')
  [ -n "$gopkg" ] || gopkg=golang-1.19-go
  local gosrc=${gopkg%-go}-src
  apt_download "$native" "$gopkg" "$goctx/deb"
  apt_download "$native" "$gosrc" "$goctx/deb"
  apt_download "$native" libc6 "$goctx/deb"   # Debian's go binaries are dynamically linked
  for d in "$goctx"/deb/*.deb; do dpkg-deb -x "$d" "$goctx/root"; done
  local goroot; goroot=$(ls -d "$goctx"/root/usr/lib/go-* | head -n1); goroot=${goroot#"$goctx/root"}
  cat >"$goctx/Dockerfile" <<DF
FROM $BASE_REF
COPY root/ /
ENV GOROOT=$goroot PATH=$goroot/bin:/bin GOPATH=/go GOCACHE=/root/.cache/go-build CGO_ENABLED=0 GOFLAGS=-mod=mod GOTOOLCHAIN=local
CMD ["go", "version"]
DF
  log "building $GO_REF for linux/$native"
  $DOCKER buildx build --builder default --provenance=false --platform "linux/$native" \
    -t "$GO_REF" --push "$goctx" >"$STATE/go-build.log" 2>&1 || { cat "$STATE/go-build.log" >&2; die "go image build failed"; }
}

start() {
  [ "$(id -u)" = 0 ] || die "run as root"
  start_binfmt
  start_dockerd
  start_registry
  build_base_images
  status
}

stop() {
  for n in registry dockerd; do
    if [ -f "$STATE/$n.pid" ]; then kill "$(cat "$STATE/$n.pid")" 2>/dev/null || true; rm -f "$STATE/$n.pid"; fi
  done
}

status() {
  local ok=0
  if $DOCKER info >/dev/null 2>&1; then
    log "engine: $($DOCKER version --format '{{.Server.Version}}'), image store: $($DOCKER info --format '{{.DriverStatus}}' | grep -q snapshotter && echo containerd || echo classic), buildx: $($DOCKER buildx version | awk '{print $2}')"
  else log "engine: down"; ok=1; fi
  if curl -fsS "http://$REGISTRY_ADDR/v2/" >/dev/null 2>&1; then log "registry: http://$REGISTRY_ADDR"; else log "registry: down"; ok=1; fi
  log "qemu binfmt: $(ls /proc/sys/fs/binfmt_misc | grep -c '^qemu-' || true) handlers"
  if have_ref "$BASE_REF" 2>/dev/null; then log "base images: $BASE_REF $GO_REF"; else log "base images: missing"; ok=1; fi
  return $ok
}

E2=${BAKERY_ENGINE2_STATE:-$STATE/engine2}
E2_SOCK=/var/run/bakery-engine2.sock
E2_BRIDGE=bakery1
E2_CIDR=${BAKERY_ENGINE2_CIDR:-172.30.99.1/24}   # the second engine's own bridge, for its RUN steps

engine2_start() {
  [ "$(id -u)" = 0 ] || die "run as root"
  mkdir -p "$E2"
  if ! ip link show "$E2_BRIDGE" >/dev/null 2>&1; then
    ip link add "$E2_BRIDGE" type bridge
    ip addr add "$E2_CIDR" dev "$E2_BRIDGE"
    ip link set "$E2_BRIDGE" up
  fi
  printf '{"features":{"containerd-snapshotter":true},"iptables":false,"ip6tables":false,"bridge":"%s"}\n' \
    "$E2_BRIDGE" >"$E2/daemon.json"
  if ! $DOCKER -H "unix://$E2_SOCK" info >/dev/null 2>&1; then
    # after a crash (tests kill it): a stale pidfile (the dead dockerd may linger as a zombie) and an orphaned
    # managed containerd would stop a new dockerd from starting
    if [ -f /var/run/bakery-engine2.pid ]; then
      local old; old=$(cat /var/run/bakery-engine2.pid)
      if ! grep -q '^State:.*[RSD]' "/proc/$old/status" 2>/dev/null || \
         ! grep -q dockerd "/proc/$old/comm" 2>/dev/null; then
        rm -f /var/run/bakery-engine2.pid
      fi
    fi
    pkill -f 'containerd --config /var/run/bakery-engine2/' 2>/dev/null || true
    log "starting the second engine on $E2_SOCK"
    nohup /usr/sbin/dockerd --config-file "$E2/daemon.json" --data-root "$E2/data" \
      --exec-root /var/run/bakery-engine2 --pidfile /var/run/bakery-engine2.pid \
      --host "unix://$E2_SOCK" >"$E2/dockerd.log" 2>&1 &
    echo $! >"$E2/dockerd.pid"
    wait_for 60 "second dockerd" $DOCKER -H "unix://$E2_SOCK" info
  fi
  $DOCKER context inspect bakery-e2 >/dev/null 2>&1 || \
    $DOCKER context create bakery-e2 --description "bakery's second engine" --docker "host=unix://$E2_SOCK" >/dev/null
  log "engine2: $($DOCKER -H "unix://$E2_SOCK" version --format '{{.Server.Version}}'), context bakery-e2"
}

engine2_stop() {
  if [ -f /var/run/bakery-engine2.pid ]; then
    local pid; pid=$(cat /var/run/bakery-engine2.pid)
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
  fi
  rm -f "$E2/dockerd.pid"
}

case ${1:-} in
  engine2-start) engine2_start ;;
  engine2-stop) engine2_stop ;;
  install) install ;;
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 install|start|stop|status|engine2-start|engine2-stop" >&2; exit 2 ;;
esac
