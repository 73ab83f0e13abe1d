#!/usr/bin/env bash
# Start (or stop) a one-node Slurm cluster on this machine, for trying `beyond sweep launch
# --backend slurm` and for the Slurm tests. Needs root and Debian's slurm-wlm + munge
# (`apt-get install slurm-wlm munge`). Usage: bash scripts/slurm-local.sh start|stop [STATE_DIR]
# Writes STATE_DIR/slurm.conf (default /tmp/beyond-slurm); export SLURM_CONF=STATE_DIR/slurm.conf
# before using sbatch/squeue against it.
set -euo pipefail
action="${1:-start}"
state="${2:-/tmp/beyond-slurm}"
conf="$state/slurm.conf"
host="$(hostname -s)"
if [ "$action" = stop ]; then
  pkill -x slurmd 2>/dev/null || true
  pkill -x slurmctld 2>/dev/null || true
  exit 0
fi
for bin in slurmctld slurmd munged sbatch; do
  command -v "$bin" >/dev/null || { echo "slurm-local: $bin not found (apt-get install slurm-wlm munge)" >&2; exit 2; }
done
mkdir -p "$state/spool" "$state/ctld" "$state/log"
cpus="$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)"  # the CPUs we may use; plain nproc also obeys OMP_NUM_THREADS
mem_mb="$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 1024 ))"
cat > "$conf" <<CONF
ClusterName=beyond-local
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$state/ctld
SlurmdSpoolDir=$state/spool
SlurmctldPidFile=$state/slurmctld.pid
SlurmdPidFile=$state/slurmd.pid
SlurmctldLogFile=$state/log/slurmctld.log
SlurmdLogFile=$state/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MpiDefault=none
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
KillWait=5
NodeName=$host CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=local Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF="$conf"
if ! pgrep -x munged >/dev/null; then
  mkdir -p /run/munge /var/log/munge /var/lib/munge
  chown -R munge:munge /run/munge /var/log/munge /var/lib/munge /etc/munge 2>/dev/null || true
  [ -f /etc/munge/munge.key ] || { dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null; chown munge:munge /etc/munge/munge.key; chmod 400 /etc/munge/munge.key; }
  runuser -u munge -- munged
fi
pkill -x slurmd 2>/dev/null || true
pkill -x slurmctld 2>/dev/null || true
slurmctld -f "$conf" -i
slurmd -f "$conf"
for _ in $(seq 1 60); do
  if sinfo -h -o '%T' 2>/dev/null | grep -Eq '^(idle|mixed|allocated)'; then
    echo "slurm-local: one-node cluster up ($host, $cpus CPUs); export SLURM_CONF=$conf"
    exit 0
  fi
  sleep 0.5
done
echo "slurm-local: the node did not come up; see $state/log" >&2
sinfo >&2 || true
exit 1
