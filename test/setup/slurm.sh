#!/usr/bin/env bash
# A one-node Slurm cluster on this machine for the slurm test runner, as
# ../shared/reference/real-components-here.md describes: munge, slurmctld
# and slurmd, with the config at /etc/slurm/slurm.conf so sbatch, squeue
# and scontrol find it without SLURM_CONF. Safe to run again.
set -euo pipefail
logdir=${SIFKIT_SERVICES_LOG:-/tmp/sifkit-services}
state=/var/lib/sifkit-slurm
mkdir -p "$logdir" "$state/ctld" "$state/d" /etc/slurm

if ! command -v slurmctld >/dev/null; then
  echo "slurm is not installed (apt-get install slurm-wlm munge); skipping" >&2
  exit 0
fi

if scontrol ping 2>/dev/null | grep -q UP && sinfo -h -o %T 2>/dev/null | grep -qE 'idle|mixed|alloc'; then
  exit 0
fi

host=$(hostname -s)
cpus=$(nproc)
cat > /etc/slurm/slurm.conf <<CONF
ClusterName=sifkit
SlurmctldHost=$host
AuthType=auth/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$state/ctld
SlurmdSpoolDir=$state/d
SlurmctldPidFile=$state/slurmctld.pid
SlurmdPidFile=$state/slurmd.pid
SlurmctldLogFile=$logdir/slurmctld.log
SlurmdLogFile=$logdir/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MinJobAge=600
SchedulerType=sched/builtin
NodeName=$host CPUs=$cpus State=UNKNOWN
PartitionName=standard-g Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
CONF

if [ ! -s /etc/munge/munge.key ]; then
  mkdir -p /etc/munge
  dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
fi
chown munge:munge /etc/munge/munge.key 2>/dev/null || true
chmod 400 /etc/munge/munge.key
mkdir -p /run/munge /var/log/munge /var/lib/munge
chown munge:munge /run/munge /var/log/munge /var/lib/munge 2>/dev/null || true
if ! pgrep -x munged >/dev/null; then
  su -s /bin/sh munge -c munged 2>/dev/null || munged --force
fi

pkill -x slurmctld 2>/dev/null || true
pkill -x slurmd 2>/dev/null || true
sleep 0.5
echo "starting slurmctld and slurmd (logs: $logdir/slurm*.log)"
setsid slurmctld -f /etc/slurm/slurm.conf </dev/null >/dev/null 2>&1 &
setsid slurmd -f /etc/slurm/slurm.conf </dev/null >/dev/null 2>&1 &
for _ in $(seq 1 60); do
  if sinfo -h -o %T 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; then
    echo "slurm ready: $(sinfo -h -o '%P %D %T %c')"
    exit 0
  fi
  scontrol update nodename="$host" state=resume >/dev/null 2>&1 || true
  sleep 0.5
done
tail -n 20 "$logdir/slurmctld.log" "$logdir/slurmd.log" >&2 || true
echo "slurm did not come up" >&2
exit 1
