#!/usr/bin/env bash
# The real local stacks bakery builds and tests against, side by side on one machine, sharing one
# distribution registry on 127.0.0.1, the QEMU binfmt handlers and the locally built base images
# (no image is ever pulled from outside):
#
#   stable   Debian's Docker 26.1 + containerd 1.7 + buildx 0.13 (apt packages; trixie on Debian 12),
#            the default socket /var/run/docker.sock and the default client config (~/.docker)
#   current  Debian sid's Docker 28.5 + containerd 2.1 + buildx 0.29, downloaded with a private apt state
#            and unpacked under $STATE/current (the system's apt sources and packages are not touched);
#            its own dockerd, socket, data-root, exec-root and bridge; selected by its own docker client
#            config dir (DOCKER_CONFIG=$STATE/current/docker-config: context `bakery-current` is its
#            currentContext, cli-plugins/docker-buildx is sid's buildx). See `env`.
#
#   .ci/stack.sh install   both stacks (idempotent; sid packages downloaded only when missing)
#   .ci/stack.sh start     both engines + registry + binfmt + base images (idempotent)
#   .ci/stack.sh stop      stop what start started
#   .ci/stack.sh status    one line per stack (engine, containerd, buildx) and per shared component
#   .ci/stack.sh env STACK shell lines selecting a stack: eval "$(.ci/stack.sh env current)"
#   .ci/stack.sh versions STACK
#                          "Docker X, buildx Y" of a running stack
#   .ci/stack.sh engine2-start | engine2-stop
#                          a second Docker engine of the stack BAKERY_STACK (stable|current, default
#                          stable) on this machine (own data-root, exec-root, containerd and bridge) with
#                          docker context `bakery-e2` in that stack's client config, for fan-out tests. Its
#                          socket and pidfile are /var/run/bakery-engine2.{sock,pid} on either stack (the
#                          fleet tests address it there): one stack's second engine at a time.
set -euo pipefail

STATE=${BAKERY_STACK_STATE:-/var/lib/bakery-stack}
REGISTRY_ADDR=${BAKERY_REGISTRY_ADDR:-127.0.0.1:5000}
BASE_REF=${REGISTRY_ADDR}/base/busybox:1.35
GO_REF=${REGISTRY_ADDR}/base/golang:1.19
DOCKER_CLI=/usr/bin/docker   # Debian's docker-cli (26.1); it talks to both engines (API version negotiation)
# the stable stack's client: the default socket and the default config (~/.docker), whatever the caller's
# environment selects (the fleet tests run this script with the current stack's DOCKER_CONFIG)
docker_stable() { env -u DOCKER_CONFIG -u DOCKER_HOST -u DOCKER_CONTEXT "$DOCKER_CLI" "$@"; }
DOCKER=docker_stable

# the current stack (Debian sid's packages, unpacked, never installed)
CUR=${BAKERY_CURRENT_STATE:-$STATE/current}
CUR_ROOT=$CUR/root                      # dpkg-deb -x of the sid packages
CUR_CFG=$CUR/docker-config              # DOCKER_CONFIG selecting it: currentContext + cli-plugins/docker-buildx
CUR_CONTEXT=bakery-current
CUR_SOCK=/var/run/bakery-current.sock
CUR_EXEC=/var/run/bakery-current        # exec-root (short: containerd's sockets live under it)
CUR_PID=/var/run/bakery-current.pid
CUR_BRIDGE=bakerycur0
CUR_CIDR=${BAKERY_CURRENT_CIDR:-172.31.253.1/24}   # not docker0 (172.17/16), not engine2 (172.30.99/24)
CUR_PKGS=(docker.io containerd docker-buildx tini-static)
CUR_SUITE=${BAKERY_CURRENT_SUITE:-sid}
docker_current() { env -u DOCKER_HOST -u DOCKER_CONTEXT DOCKER_CONFIG="$CUR_CFG" "$DOCKER_CLI" "$@"; }

SELECTED=${BAKERY_STACK:-stable}
case $SELECTED in stable|current) ;; *) echo "[stack] error: BAKERY_STACK=$SELECTED: expected stable or current" >&2; exit 2 ;; esac
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

install_stable() {
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

# ---------------------------------------------------------------------------------------------- current
current_unpacked() {
  [ -x "$CUR_ROOT/usr/sbin/dockerd" ] && [ -x "$CUR_ROOT/usr/bin/containerd" ] && \
    [ -x "$CUR_ROOT/usr/libexec/docker/cli-plugins/docker-buildx" ] && [ -x "$CUR_ROOT/usr/bin/tini-static" ]
}

# apt-get with a private state: only the current suite's list, own lists/cache/preferences, no system lock;
# the system's /etc/apt sources, lists and dpkg database are read by nobody and written by nobody
apt_current() {
  local a="$CUR/apt"
  mkdir -p "$a/sources.list.d" "$a/preferences.d" "$a/lists/partial" "$a/cache/archives/partial"
  local mirror; mirror=$(debian_mirror); [ -n "$mirror" ] || die "no Debian mirror in the machine's apt sources"
  printf 'Types: deb\nURIs: %s\nSuites: %s\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
    "$mirror" "$CUR_SUITE" >"$a/sources.list.d/current.sources"
  apt-get -o Dir::Etc::SourceList=/dev/null -o Dir::Etc::SourceParts="$a/sources.list.d" \
    -o Dir::Etc::Preferences=/dev/null -o Dir::Etc::PreferencesParts="$a/preferences.d" \
    -o Dir::State::Lists="$a/lists" -o Dir::Cache="$a/cache" -o Dir::State::extended_states="$a/extended_states" \
    -o Debug::NoLocking=1 -o APT::Sandbox::User=root "$@"
}

install_current() {
  if ! current_unpacked; then
    log "downloading the current stack from Debian $CUR_SUITE: ${CUR_PKGS[*]}"
    local debs="$CUR/debs"
    rm -rf "$debs" "$CUR_ROOT.new"; mkdir -p "$debs"
    apt_current update -qq || { sleep 5; apt_current update -qq; }
    (cd "$debs" && apt_current download -qq "${CUR_PKGS[@]/%//$CUR_SUITE}") || die "apt-get download from $CUR_SUITE failed"
    local d
    for d in "$debs"/*.deb; do dpkg-deb -x "$d" "$CUR_ROOT.new"; done
    # absolute links in the packages (e.g. docker-init -> /usr/bin/tini-static) would leave the prefix: relative
    local link target
    while IFS= read -r link; do
      target=$(readlink "$link")
      case $target in /*) ln -sfnr "$CUR_ROOT.new$target" "$link" ;; esac
    done < <(find "$CUR_ROOT.new" -type l)
    ls -1 "$debs" >"$CUR_ROOT.new/.debs"
    rm -rf "$CUR_ROOT"; mv "$CUR_ROOT.new" "$CUR_ROOT"
    current_unpacked || die "the unpacked $CUR_SUITE packages lack dockerd, containerd, buildx or tini-static"
  fi
  # the engine's settings: those of the stable engine, plus its own bridge and docker-init
  mkdir -p "$CUR"
  printf '{"features":{"containerd-snapshotter":true},"iptables":false,"ip6tables":false,"bridge":"%s","init-path":"%s"}\n' \
    "$CUR_BRIDGE" "$CUR_ROOT/usr/bin/tini-static" >"$CUR/daemon.json"
  # the client config that selects the stack: sid's buildx as the first plugin found, the engine as the context
  mkdir -p "$CUR_CFG/cli-plugins"
  ln -sfn "$CUR_ROOT/usr/libexec/docker/cli-plugins/docker-buildx" "$CUR_CFG/cli-plugins/docker-buildx"
  [ -f "$CUR_CFG/config.json" ] || echo '{}' >"$CUR_CFG/config.json"
  ensure_context docker_current "$CUR_CONTEXT" "unix://$CUR_SOCK" "bakery's current stack (Debian $CUR_SUITE)"
  if [ "$(docker_current context show 2>/dev/null)" != "$CUR_CONTEXT" ]; then
    docker_current context use "$CUR_CONTEXT" >/dev/null 2>&1   # writes currentContext into config.json
  fi
  log "installed current: $(sed -E 's/_(amd64|arm64|all)\.deb$//; s/_/ /' "$CUR_ROOT/.debs" | tr '\n' ',' | sed 's/,$//; s/,/, /g')"
}

# ensure_context CLIENT NAME ENDPOINT DESCRIPTION: the docker context NAME, pointing at ENDPOINT, in CLIENT's config
ensure_context() {
  local client=$1 name=$2 endpoint=$3 desc=$4 have
  have=$("$client" context inspect "$name" --format '{{.Endpoints.docker.Host}}' 2>/dev/null || true)
  [ "$have" = "$endpoint" ] && return 0
  [ -z "$have" ] || "$client" context rm -f "$name" >/dev/null
  local out
  out=$("$client" context create "$name" --description "$desc" --docker "host=$endpoint" 2>&1) || \
    die "docker context create $name: $out"
}

install() {
  install_stable
  install_current
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

# docker_at SOCKET ARGS...: the CLI on one engine's socket, whatever the environment selects
docker_at() { local sock=$1; shift; env -u DOCKER_CONFIG -u DOCKER_HOST -u DOCKER_CONTEXT "$DOCKER_CLI" -H "unix://$sock" "$@"; }

# pid_alive PIDFILE COMM: the process the pidfile names runs (not a zombie left by a kill, not a recycled pid)
pid_alive() {
  local pid; pid=$(cat "$1" 2>/dev/null) || return 1
  [ -n "$pid" ] && grep -q '^State:[[:space:]]*[RSD]' "/proc/$pid/status" 2>/dev/null && \
    [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$2" ]
}

ensure_bridge() { # name cidr
  ip link show "$1" >/dev/null 2>&1 && return 0
  ip link add "$1" type bridge
  ip addr add "$2" dev "$1"
  ip link set "$1" up
}

# start_engine NAME DOCKERD PATH_PREFIX CONFIG_FILE DATA_ROOT EXEC_ROOT PIDFILE SOCKET LOG
# One dockerd in the background (idempotent: nothing to do when its socket answers). It starts its own managed
# containerd, found on PATH (PATH_PREFIX first).
start_engine() {
  local name=$1 bin=$2 pathpre=$3 cfg=$4 data=$5 exec=$6 pidf=$7 sock=$8 logf=$9
  if docker_at "$sock" info >/dev/null 2>&1; then return 0; fi
  if pid_alive "$pidf" dockerd; then   # still starting (or stopping): give it the time
    wait_for 60 "$name" docker_at "$sock" info; return 0
  fi
  # after a crash (the fleet tests kill the second engine): a stale pidfile and an orphaned managed containerd
  # would stop a new dockerd from starting
  rm -f "$pidf"
  stop_pid "$exec/containerd/containerd.pid" containerd "orphaned containerd of $name"
  mkdir -p "$(dirname "$logf")" "$data"
  log "starting $name on $sock"
  PATH="$pathpre$PATH" setsid nohup "$bin" --config-file "$cfg" --data-root "$data" --exec-root "$exec" \
    --pidfile "$pidf" --host "unix://$sock" >"$logf" 2>&1 </dev/null &
  wait_for 60 "$name" docker_at "$sock" info
}

# stop_pid PIDFILE COMM WHAT: SIGTERM the process a pidfile names and wait for it to exit (30 s, then SIGKILL)
stop_pid() {
  local pidf=$1 comm=$2 what=$3 pid
  if ! pid_alive "$pidf" "$comm"; then return 0; fi
  pid=$(cat "$pidf")
  log "stopping $what (pid $pid)"
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 30); do pid_alive "$pidf" "$comm" || return 0; sleep 1; done
  log "$what did not exit in 30s: SIGKILL"
  kill -9 "$pid" 2>/dev/null || true
  sleep 1
}

STABLE_SOCK=/var/run/docker.sock
STABLE_PID=/var/run/docker.pid

start_dockerd() {
  # the distribution's dockerd with its defaults (/etc/docker/daemon.json, /var/lib/docker, /var/run/docker)
  if docker_at "$STABLE_SOCK" info >/dev/null 2>&1; then return 0; fi
  mkdir -p "$STATE"
  if pid_alive "$STABLE_PID" dockerd; then wait_for 60 dockerd docker_at "$STABLE_SOCK" info; return 0; fi
  rm -f "$STABLE_PID"
  stop_pid /var/run/docker/containerd/containerd.pid containerd "orphaned containerd of the stable engine"
  log "starting dockerd (stable)"
  setsid nohup /usr/sbin/dockerd --host "unix://$STABLE_SOCK" --pidfile "$STABLE_PID" >"$STATE/dockerd.log" 2>&1 &
  echo $! >"$STATE/dockerd.pid"
  wait_for 60 dockerd docker_at "$STABLE_SOCK" info
}

start_current() {
  [ -f "$CUR/daemon.json" ] && current_unpacked && [ -f "$CUR_CFG/config.json" ] || \
    die "the current stack is not installed: run .ci/stack.sh install"
  ensure_bridge "$CUR_BRIDGE" "$CUR_CIDR"
  start_engine "dockerd (current)" "$CUR_ROOT/usr/sbin/dockerd" "$CUR_ROOT/usr/bin:$CUR_ROOT/usr/sbin:" \
    "$CUR/daemon.json" "$CUR/data" "$CUR_EXEC" "$CUR_PID" "$CUR_SOCK" "$CUR/dockerd.log"
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
  setsid nohup /usr/bin/docker-registry serve "$STATE/registry.yml" >"$STATE/registry.log" 2>&1 &
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
  build_base_images      # once, with the stable engine: both stacks read them from the one registry
  start_current
  status
}

stop() {
  stop_pid "$STATE/registry.pid" docker-registry registry; rm -f "$STATE/registry.pid"
  stop_pid "$CUR_PID" dockerd "dockerd (current)"
  stop_pid "$STABLE_PID" dockerd "dockerd (stable)"
  rm -f "$STATE/dockerd.pid"
}

# stack_line NAME CLIENT WHERE: one line: engine, containerd, buildx and image store of a stack, or "down"
stack_line() {
  local name=$1 client=$2 where=$3
  if ! "$client" info >/dev/null 2>&1; then log "$name: down ($where)"; return 1; fi
  local engine containerd buildx store
  engine=$("$client" version --format '{{.Server.Version}}')
  containerd=$("$client" version --format '{{range .Server.Components}}{{if eq .Name "containerd"}}{{.Version}}{{end}}{{end}}')
  buildx=$("$client" buildx version 2>/dev/null | awk '{print $2}')
  store=$("$client" info --format '{{.DriverStatus}}' | grep -q snapshotter && echo containerd || echo classic)
  log "$name: engine $engine, containerd $containerd, buildx ${buildx:-missing}, image store $store ($where)"
}

status() {
  local ok=0
  stack_line stable docker_stable "unix://$STABLE_SOCK, default client config" || ok=1
  stack_line current docker_current "unix://$CUR_SOCK, DOCKER_CONFIG=$CUR_CFG" || ok=1
  if curl -fsS "http://$REGISTRY_ADDR/v2/" >/dev/null 2>&1; then log "registry: http://$REGISTRY_ADDR"; else log "registry: down"; ok=1; fi
  log "qemu binfmt: $(ls /proc/sys/fs/binfmt_misc | grep -c '^qemu-' || true) handlers"
  if have_ref "$BASE_REF" 2>/dev/null; then log "base images: $BASE_REF $GO_REF"; else log "base images: missing"; ok=1; fi
  return $ok
}

# env STACK: the shell lines that select a stack for docker, buildx, bakery and its tests
stack_env() {
  case $1 in
    stable) echo "export BAKERY_STACK=stable"; echo "unset DOCKER_CONFIG" ;;
    current) echo "export BAKERY_STACK=current"; printf 'export DOCKER_CONFIG=%q\n' "$CUR_CFG" ;;
    *) die "env: expected stable or current, not '$1'" ;;
  esac
}

# versions STACK: "Docker 26.1.5, buildx 0.13.1" (Debian revisions left out)
versions() {
  local client
  case $1 in stable) client=docker_stable ;; current) client=docker_current ;; *) die "versions: expected stable or current" ;; esac
  local e b
  e=$("$client" version --format '{{.Server.Version}}' 2>/dev/null || echo '?')
  b=$("$client" buildx version 2>/dev/null | awk '{print $2}'); b=${b:-?}
  echo "Docker ${e%%[+~]*}, buildx ${b%%[+~]*}"
}

# ------------------------------------------------------------------------------------------------- engine2
# The second engine of the selected stack. Socket and pidfile are fixed (the fleet tests address them), so
# one stack's second engine runs at a time; /var/run/bakery-engine2.stack says whose it is.
E2_SOCK=/var/run/bakery-engine2.sock
E2_PID=/var/run/bakery-engine2.pid
E2_OWNER=/var/run/bakery-engine2.stack
if [ "$SELECTED" = current ]; then
  E2=${BAKERY_ENGINE2_STATE:-$CUR/engine2}
  E2_BRIDGE=bakerycur1
  E2_CIDR=${BAKERY_ENGINE2_CIDR:-172.31.254.1/24}
  E2_EXEC=/var/run/bakery-current-engine2
  E2_DOCKERD=$CUR_ROOT/usr/sbin/dockerd
  E2_PATH="$CUR_ROOT/usr/bin:$CUR_ROOT/usr/sbin:"
  E2_CLIENT=docker_current
  E2_INIT=",\"init-path\":\"$CUR_ROOT/usr/bin/tini-static\""
else
  E2=${BAKERY_ENGINE2_STATE:-$STATE/engine2}
  E2_BRIDGE=bakery1
  E2_CIDR=${BAKERY_ENGINE2_CIDR:-172.30.99.1/24}   # the second engine's own bridge, for its RUN steps
  E2_EXEC=/var/run/bakery-engine2
  E2_DOCKERD=/usr/sbin/dockerd
  E2_PATH=""
  E2_CLIENT=docker_stable
  E2_INIT=""
fi

engine2_start() {
  [ "$(id -u)" = 0 ] || die "run as root"
  if [ "$SELECTED" = current ]; then
    current_unpacked && [ -f "$CUR_CFG/config.json" ] || die "the current stack is not installed: run .ci/stack.sh install"
  fi
  # the other stack's second engine holds the socket: it goes first
  local owner; owner=$(cat "$E2_OWNER" 2>/dev/null || echo stable)
  if [ "$owner" != "$SELECTED" ] && { pid_alive "$E2_PID" dockerd || docker_at "$E2_SOCK" info >/dev/null 2>&1; }; then
    log "the second engine runs the $owner stack: stopping it for $SELECTED"
    engine2_stop
  fi
  mkdir -p "$E2"
  ensure_bridge "$E2_BRIDGE" "$E2_CIDR"
  printf '{"features":{"containerd-snapshotter":true},"iptables":false,"ip6tables":false,"bridge":"%s"%s}\n' \
    "$E2_BRIDGE" "$E2_INIT" >"$E2/daemon.json"
  echo "$SELECTED" >"$E2_OWNER"
  start_engine "the second engine ($SELECTED)" "$E2_DOCKERD" "$E2_PATH" "$E2/daemon.json" "$E2/data" "$E2_EXEC" \
    "$E2_PID" "$E2_SOCK" "$E2/dockerd.log"
  ensure_context "$E2_CLIENT" bakery-e2 "unix://$E2_SOCK" "bakery's second engine ($SELECTED stack)"
  log "engine2 ($SELECTED): $(docker_at "$E2_SOCK" version --format '{{.Server.Version}}'), context bakery-e2"
}

engine2_stop() {
  stop_pid "$E2_PID" dockerd "the second engine ($(cat "$E2_OWNER" 2>/dev/null || echo stable))"
  rm -f "$E2/dockerd.pid"
}

case ${1:-} in
  engine2-start) engine2_start ;;
  engine2-stop) engine2_stop ;;
  install) install ;;
  start) start ;;
  stop) stop ;;
  status) status ;;
  env) stack_env "${2:-$SELECTED}" ;;
  versions) versions "${2:-$SELECTED}" ;;
  *) echo "usage: $0 install|start|stop|status|env STACK|versions STACK|engine2-start|engine2-stop" >&2
     echo "       (STACK: stable|current; engine2-* use BAKERY_STACK, default stable)" >&2; exit 2 ;;
esac
