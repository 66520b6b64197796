#!/usr/bin/env bash
# A one-node Slurm cluster on this machine for the slurm test runner, as
# ../shared/reference/real-components-here.md describes: munge, slurmctld
# and slurmd, with the config at /etc/slurm/slurm.conf so sbatch, squeue
# and scontrol find it without SLURM_CONF. Accounting runs as a site runs
# it (slurmdbd over MariaDB), so `sacct` answers with states and exit codes
# of finished jobs: `sifkit jobs` and `release --on slurm` read them there.
# Safe to run again; fast (no restart) when everything already runs.
set -euo pipefail
logdir=${SIFKIT_SERVICES_LOG:-/tmp/sifkit-services}
state=/var/lib/sifkit-slurm
mkdir -p "$logdir" "$state/ctld" "$state/d" /etc/slurm

if ! command -v slurmctld >/dev/null; then
  echo "slurm is not installed (apt-get install slurm-wlm munge); skipping" >&2
  exit 0
fi

# Captured, not piped into grep -q: under pipefail an early grep exit is a SIGPIPE failure.
accounting_on() {
  local conf
  conf=$(scontrol show config 2>/dev/null) || return 1
  [[ $conf =~ AccountingStorageType\ *=\ *accounting_storage/slurmdbd ]]
}
if scontrol ping 2>/dev/null | grep -q UP && sinfo -h -o %T 2>/dev/null | grep -qE 'idle|mixed|alloc' \
   && { ! command -v slurmdbd >/dev/null || { accounting_on && pgrep -x slurmdbd >/dev/null && sacct -n -X -S now >/dev/null 2>&1; }; }; then
  exit 0
fi

# MariaDB and slurmdbd, when installed (apt-get install mariadb-server slurmdbd).
with_dbd=no
if command -v slurmdbd >/dev/null && command -v mariadbd >/dev/null; then
  with_dbd=yes
  if ! mariadb-admin ping >/dev/null 2>&1; then
    echo "starting mariadb (log: $logdir/mariadb.log)"
    mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld
    # The server writes its log as mysql, after dropping root.
    touch "$logdir/mariadb.log" && chown mysql:mysql "$logdir/mariadb.log"
    [ -d /var/lib/mysql/mysql ] || mariadb-install-db --user=mysql >"$logdir/mariadb-install.log" 2>&1
    setsid mariadbd-safe --user=mysql --log-error="$logdir/mariadb.log" </dev/null >/dev/null 2>&1 &
    for _ in $(seq 1 120); do mariadb-admin ping >/dev/null 2>&1 && break; sleep 0.5; done
    mariadb-admin ping >/dev/null 2>&1 || { tail -n 20 "$logdir/mariadb.log" >&2; echo "mariadb did not come up" >&2; exit 1; }
  fi
  # slurmdbd reaches MariaDB over its socket as root (unix_socket auth): no password anywhere.
  mariadb -e 'CREATE DATABASE IF NOT EXISTS slurm_acct_db'
  cat > /etc/slurm/slurmdbd.conf <<DBD
AuthType=auth/munge
DbdHost=localhost
SlurmUser=root
PidFile=$state/slurmdbd.pid
LogFile=$logdir/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageLoc=slurm_acct_db
StorageUser=root
DBD
  # slurmdbd refuses a config others can read.
  chmod 600 /etc/slurm/slurmdbd.conf
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
if [ "$with_dbd" = yes ]; then
  cat >> /etc/slurm/slurm.conf <<CONF
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
JobAcctGatherType=jobacct_gather/none
CONF
fi

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

if [ "$with_dbd" = yes ] && ! pgrep -x slurmdbd >/dev/null; then
  echo "starting slurmdbd (log: $logdir/slurmdbd.log)"
  setsid slurmdbd </dev/null >/dev/null 2>&1 &
  for _ in $(seq 1 60); do sacctmgr -n list cluster >/dev/null 2>&1 && break; sleep 0.5; done
  sacctmgr -n list cluster >/dev/null 2>&1 || { tail -n 20 "$logdir/slurmdbd.log" >&2; echo "slurmdbd did not come up" >&2; exit 1; }
fi
if [ "$with_dbd" = yes ] && ! sacctmgr -n -P list cluster format=cluster | grep -qx sifkit; then
  sacctmgr -i add cluster sifkit >/dev/null
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
