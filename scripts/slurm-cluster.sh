#!/bin/bash
# A one-node Slurm cluster on this machine, for test/slurm.test.ts (which submits
# examples/slurm-sweep.sh to it). Needs root and Debian's slurmctld, slurmd, slurm-client and
# munge; .ci/run installs them and runs `sh scripts/slurm-cluster.sh start`.
#
#   scripts/slurm-cluster.sh start   write /etc/slurm/slurm.conf (this host as the only node,
#                                    its CPUs and memory from `slurmd -C`), a munge key if there is
#                                    none, start munged, slurmctld and slurmd, wait for the node
#   scripts/slurm-cluster.sh stop    stop the three daemons
#
# Choices for a machine without systemd or cgroups (a container, a CI runner): processes tracked
# through /proc (proctrack/linuxproc), no task affinity plugin (task/none), no accounting, and the
# daemons run as root with their state under /var/lib/glonet-slurm.
set -euo pipefail

STATE=/var/lib/glonet-slurm
CONF=/etc/slurm/slurm.conf

say() { echo "slurm-cluster: $*" >&2; }

start() {
  for cmd in slurmctld slurmd sinfo munged; do
    command -v "$cmd" >/dev/null || { say "$cmd not found (apt-get install slurmctld slurmd slurm-client munge)"; exit 1; }
  done
  [ "$(id -u)" = 0 ] || { say "needs root"; exit 1; }
  mkdir -p "$STATE/ctld" "$STATE/d" /var/log/slurm /etc/slurm /run/munge /var/lib/munge /var/log/munge
  if [ ! -s /etc/munge/munge.key ]; then
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
  fi
  chown -R munge:munge /etc/munge /run/munge /var/lib/munge /var/log/munge
  chmod 0700 /etc/munge
  chmod 0400 /etc/munge/munge.key
  if ! pgrep -x munged >/dev/null; then
    runuser -u munge -- /usr/sbin/munged
  fi
  local node
  node=$(slurmd -C | head -n 1)
  cat > "$CONF" <<EOF
# Written by glonet's scripts/slurm-cluster.sh: a one-node cluster for the tests.
ClusterName=glonet-test
SlurmctldHost=$(hostname -s)(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MaxArraySize=1001
$node NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
  pgrep -x slurmctld >/dev/null || slurmctld
  pgrep -x slurmd >/dev/null || slurmd
  for _ in $(seq 1 60); do
    if sinfo -h -o '%T' 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; then
      say "up: $(sinfo -h -o '%N %c CPUs %m MB %T')"
      return 0
    fi
    sleep 1
  done
  say "the node did not come up; see /var/log/slurm/slurmctld.log and slurmd.log"
  sinfo -N -l >&2 || true
  exit 1
}

stop() {
  pkill -x slurmd || true
  pkill -x slurmctld || true
  pkill -x munged || true
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
