#!/usr/bin/env bash
# A real multi-node Docker Swarm on ONE machine, for `make test-swarm` and for trying the
# Swarm deployment out (deploy/swarm/): one extra dockerd per node, each in its own network
# namespace on a bridge of its own (privileged Docker-in-Docker is refused on these machines).
# The machine's own Docker engine is never touched and never joins the Swarm.
#
#   scripts/swarm/nodes.sh up   ID [WORKERS]   # manager + WORKERS (default 2) workers
#   scripts/swarm/nodes.sh load ID IMAGE...    # docker save | docker load onto every node
#                                              # (CHSW_LOAD_NODES="m w1": onto these only)
#   scripts/swarm/nodes.sh down ID             # stop and remove everything of ID
#   scripts/swarm/nodes.sh env  ID             # the node sockets and addresses (sourceable)
#
# ID: 1-6 lower-case letters or digits. Every name carries it, so two runs cannot collide:
# bridge chsw<ID>, namespaces chsw<ID>-m, chsw<ID>-w1..., data under /var/tmp/chsw-<ID>/,
# addresses 10.213.<N>.0/24 (N from the ID), iptables rules commented "chsw-<ID>".
# Node k's engine: unix:///var/tmp/chsw-<ID>/<node>/docker.sock; its address 10.213.N.(10+k),
# the host's end of the bridge 10.213.N.1 (where the host's own services are reachable).
set -euo pipefail

cmd=${1:?usage: nodes.sh up|load|down|env ID ...}
id=${2:?usage: nodes.sh $cmd ID}
[[ $id =~ ^[a-z0-9]{1,6}$ ]] || { echo "nodes.sh: ID must be 1-6 lower-case letters or digits" >&2; exit 2; }
shift 2

root=/var/tmp/chsw-$id
bridge=chsw$id
tag="chsw-$id"
# one /24 per ID, from a checksum of the ID (collisions between two IDs are unlikely; the
# up command refuses a subnet that is already routed)
octet=$(( $(printf '%s' "$id" | cksum | cut -d' ' -f1) % 200 + 20 ))
net=10.213.$octet
log() { echo "[swarm-nodes $(date +%T)] $*" >&2; }

nodes() { # node names in order: m w1 w2 ...
  if [[ -f $root/nodes ]]; then cat "$root/nodes"; fi
}
sock() { echo "unix://$root/$1/docker.sock"; }
dk() { local n=$1; shift; docker -H "$(sock "$n")" "$@"; }

start_node() { # name index
  local n=$1 k=$2 ns="chsw$id-$1" dir=$root/$1
  mkdir -p "$dir"
  ip netns add "$ns"
  ip link add "${bridge}-$n" type veth peer name eth0 netns "$ns"
  ip link set "${bridge}-$n" master "$bridge" up
  ip -n "$ns" addr add "$net.$((10 + k))/24" dev eth0
  ip -n "$ns" link set eth0 up
  ip -n "$ns" link set lo up
  ip -n "$ns" route add default via "$net.1"
  # nsenter, not `ip netns exec` (that remounts /sys and hides the cgroups from dockerd);
  # --no-new-privileges: a Swarm service cannot ask for it (API 1.41), the node enforces it
  # for every container; the inner bridge gets a range of its own per node
  # DOCKER_SERVICE_PREFER_OFFLINE_IMAGE=1: a task whose image the node has starts at once
  # (by default the node first tries to pull it, and without a registry that waits for
  # a timeout); the stack's services name their images by name
  DOCKER_SERVICE_PREFER_OFFLINE_IMAGE=1 nsenter --net="/var/run/netns/$ns" setsid dockerd \
    --data-root "$dir/data" --exec-root "$dir/exec" \
    -H "unix://$dir/docker.sock" --pidfile "$dir/docker.pid" \
    --containerd-namespace "chsw$id$n" --containerd-plugins-namespace "chsw$id${n}p" \
    --no-new-privileges --bip "172.31.$((200 + k)).1/24" \
    --default-address-pool "base=10.214.0.0/16,size=24" \
    >"$dir/dockerd.log" 2>&1 </dev/null &
  local i
  for i in $(seq 1 120); do
    dk "$n" info >/dev/null 2>&1 && return 0
    sleep 0.5
  done
  log "dockerd of node $n did not answer; its log:"; tail -20 "$dir/dockerd.log" >&2
  return 1
}

up() {
  local workers=${1:-2}
  if ip route | grep -q "^$net\."; then
    echo "nodes.sh: $net.0/24 is already in use (another ID?); choose another ID" >&2; exit 1
  fi
  [[ -e $root ]] && { echo "nodes.sh: $root exists: run 'nodes.sh down $id' first" >&2; exit 1; }
  mkdir -p "$root"
  printf 'm\n' >"$root/nodes"
  for k in $(seq 1 "$workers"); do printf 'w%s\n' "$k" >>"$root/nodes"; done
  ip link add "$bridge" type bridge
  ip addr add "$net.1/24" dev "$bridge"
  ip link set "$bridge" up
  # Docker's FORWARD policy is DROP: let the nodes talk to each other and to the host
  iptables -I FORWARD -i "$bridge" -o "$bridge" -m comment --comment "$tag" -j ACCEPT
  local k=0 n
  for n in $(nodes); do start_node "$n" "$k"; k=$((k + 1)); done
  dk m swarm init --advertise-addr "$net.10" --listen-addr "$net.10:2377" \
    --default-addr-pool 10.215.0.0/16 >/dev/null
  local token
  token=$(dk m swarm join-token -q worker)
  for n in $(nodes); do
    [[ $n == m ]] && continue
    dk "$n" swarm join --token "$token" --advertise-addr "$(addr "$n")" "$net.10:2377" >/dev/null
  done
  # the manager runs the hub and the data services; workers run the students' servers
  for n in $(nodes); do
    dk m node update --label-add "classhub.role=$([[ $n == m ]] && echo manager || echo students)" \
      "$(dk "$n" info --format '{{.Swarm.NodeID}}')" >/dev/null
  done
  log "swarm $id: $(dk m node ls --format '{{.Hostname}}/{{.ManagerStatus}}/{{.Availability}}' | wc -l) nodes on $net.0/24"
}

addr() { # node name -> address
  local k=0 n
  for n in $(nodes); do [[ $n == "$1" ]] && { echo "$net.$((10 + k))"; return; }; k=$((k + 1)); done
  return 1
}

load() {
  local n
  for n in ${CHSW_LOAD_NODES:-$(nodes)}; do
    log "loading ${*} onto node $n"
    docker save "$@" | dk "$n" load -q >/dev/null
  done
}

down() {
  local n pid
  for n in $(nodes); do
    local dir=$root/$n
    if [[ -f $dir/docker.pid ]]; then
      pid=$(cat "$dir/docker.pid")
      # our own dockerd only: its command line names its own pid file
      if grep -qa -- "$dir/docker.pid" "/proc/$pid/cmdline" 2>/dev/null; then
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
        kill -9 "$pid" 2>/dev/null || true
      fi
    fi
    # containers that survived their dockerd (its shims) die with the namespace's processes
    ip netns pids "chsw$id-$n" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
    ip netns del "chsw$id-$n" 2>/dev/null || true
    ip link del "${bridge}-$n" 2>/dev/null || true
  done
  while iptables -D FORWARD -i "$bridge" -o "$bridge" -m comment --comment "$tag" -j ACCEPT 2>/dev/null; do :; done
  ip link del "$bridge" 2>/dev/null || true
  if [[ -d $root ]]; then
    # mounts the nodes' engines left behind (overlay layers, shm, netns files)
    grep -o " $root/[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
    rm -rf "$root"
  fi
  log "swarm $id removed"
}

env_() {
  local n
  echo "CHSW_NET=$net"
  echo "CHSW_HOST_ADDR=$net.1"
  for n in $(nodes); do
    echo "CHSW_SOCK_${n^^}=$(sock "$n")"
    echo "CHSW_ADDR_${n^^}=$(addr "$n")"
  done
}

case $cmd in
  up) up "$@" ;;
  load) load "$@" ;;
  down) down ;;
  env) env_ ;;
  *) echo "usage: nodes.sh up|load|down|env ID ..." >&2; exit 2 ;;
esac
