#!/usr/bin/env bash
# slurm-local.sh: a private Slurm cluster on 127.0.0.1 for tests and local trials (issue 6).
#
#   scripts/slurm-local.sh install       install Debian's slurm-wlm and munge (no-op when present)
#   scripts/slurm-local.sh start DIR     start munged, slurmctld and two slurmd (nodes n1, n2)
#   scripts/slurm-local.sh env DIR       print `export SLURM_CONF=…` for clients (eval it)
#   scripts/slurm-local.sh status DIR    daemons alive, nodes and jobs
#   scripts/slurm-local.sh stop DIR      cancel jobs, then stop the daemons by the PIDs recorded
#
# All state lives in DIR: slurm.conf, the munge key, socket and pid file, spool and state folders,
# logs and the PIDs of the daemons this script started. Nothing under /etc, /run or /var is used, so
# several clusters (one per test run) can coexist; each gets its own ports. It runs as root without
# systemd or cgroups (proctrack/linuxproc, task/none), as CI containers do. This is a test fixture,
# not a way to run a real cluster: there is no accounting database and jobs run as root.
set -euo pipefail

NODES=(n1 n2)
# Each node advertises more CPUs than the machine has so that a handful of small test jobs run at
# once on a 2-core machine instead of queueing (SlurmdParameters=config_overrides accepts it).
CPUS_PER_NODE=4
# Memory each node advertises (MB), so that jobs asking for --mem (the spec's `memory:`) can run.
MEMORY_PER_NODE=4096

die() { echo "slurm-local.sh: $*" >&2; exit 1; }

usage() {
    sed -n '3,8p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

sudo_prefix() { if [ "$(id -u)" = 0 ]; then echo ""; else echo "sudo"; fi; }

cmd_install() {
    local missing=()
    for tool in slurmctld slurmd sbatch squeue scancel sinfo munged; do
        command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
    done
    if [ ${#missing[@]} -eq 0 ]; then
        echo "slurm-local.sh: slurm-wlm and munge already installed ($(slurmctld -V))"
        return 0
    fi
    echo "slurm-local.sh: installing slurm-wlm and munge (missing: ${missing[*]})"
    local sudo; sudo=$(sudo_prefix)
    # Why: `apt-get update` is slow and needs the network; run it only when the package is unknown.
    if ! apt-cache show slurm-wlm >/dev/null 2>&1; then
        $sudo apt-get update -qq
    fi
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends slurm-wlm munge
}

# Absolute path of DIR (created if needed).
state_dir() {
    [ -n "${1:-}" ] || usage
    mkdir -p "$1"
    (cd "$1" && pwd -P)
}

# A TCP port nobody listens on 127.0.0.1, picked at random so parallel clusters do not collide.
free_port() {
    local port
    for _ in $(seq 1 50); do
        port=$((20000 + RANDOM % 40000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return 0
        fi
    done
    die "no free TCP port found on 127.0.0.1"
}

pid_alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }

write_conf() {
    local dir=$1 host; host=$(hostname -s)
    local ctld_port; ctld_port=$(free_port)
    {
        echo "# Private test cluster written by scripts/slurm-local.sh; all state in $dir."
        echo "ClusterName=streamline"
        echo "SlurmctldHost=$host(127.0.0.1)"
        echo "SlurmctldPort=$ctld_port"
        echo "SlurmUser=root"
        echo "SlurmdUser=root"
        echo "AuthType=auth/munge"
        echo "AuthInfo=socket=$dir/munge/munge.socket"
        echo "CredType=cred/munge"
        echo "StateSaveLocation=$dir/state"
        echo "SlurmdSpoolDir=$dir/spool/%n"
        echo "SlurmctldPidFile=$dir/run/slurmctld.pid"
        echo "SlurmdPidFile=$dir/run/slurmd-%n.pid"
        echo "SlurmctldLogFile=$dir/log/slurmctld.log"
        echo "SlurmdLogFile=$dir/log/slurmd-%n.log"
        # Why: no systemd and no cgroup hierarchy in CI containers.
        echo "ProctrackType=proctrack/linuxproc"
        echo "TaskPlugin=task/none"
        echo "JobAcctGatherType=jobacct_gather/none"
        echo "AccountingStorageType=accounting_storage/none"
        echo "JobCompType=jobcomp/none"
        echo "MpiDefault=none"
        echo "SwitchType=switch/none"
        echo "SelectType=select/cons_tres"
        echo "SelectTypeParameters=CR_CPU"
        echo "SlurmdParameters=config_overrides"
        echo "SchedulerType=sched/backfill"
        # Why: the default batch_sched_delay (3 s) postponed every dependant by 3 s; with 0 a chain of
        # three trivial jobs takes 3 s instead of 9 s.
        echo "SchedulerParameters=batch_sched_delay=0"
        echo "MailProg=/bin/true"
        # Why: without accounting, squeue is the only record of finished jobs; keep them a day.
        echo "MinJobAge=86400"
        echo "ReturnToService=2"
        # Why: tests cancel jobs; do not wait the default 30 s between SIGTERM and SIGKILL.
        echo "KillWait=2"
        echo "InactiveLimit=0"
        echo "CommunicationParameters=NoCtldInAddrAny,NoInAddrAny"
        local node
        for node in "${NODES[@]}"; do
            echo "NodeName=$node NodeHostname=$host NodeAddr=127.0.0.1 Port=$(free_port) CPUs=$CPUS_PER_NODE RealMemory=$MEMORY_PER_NODE State=UNKNOWN"
        done
        echo "PartitionName=debug Nodes=$(IFS=,; echo "${NODES[*]}") Default=YES MaxTime=INFINITE State=UP"
    } > "$dir/slurm.conf"
}

start_munge() {
    local dir=$1
    mkdir -p "$dir/munge"
    chmod 700 "$dir/munge"
    if [ ! -s "$dir/munge/munge.key" ]; then
        dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 status=none
    fi
    chmod 400 "$dir/munge/munge.key"
    # Its stdio goes to a file: the daemon would otherwise hold the caller's pipes open forever.
    # --force: munged refuses some setups (running as root, /tmp parents) that are fine for tests.
    munged --force \
        --socket="$dir/munge/munge.socket" \
        --key-file="$dir/munge/munge.key" \
        --pid-file="$dir/munge/munged.pid" \
        --log-file="$dir/log/munged.log" \
        --seed-file="$dir/munge/munged.seed" \
        </dev/null >>"$dir/log/munged.out" 2>&1 \
        || die "munged did not start; see $dir/log/munged.log"
    cp "$dir/munge/munged.pid" "$dir/run/munged.pid"
}

# Starts DAEMON ARGS… in its own session with stdio on its log; records its PID as run/NAME.pid.
start_daemon() {
    local dir=$1 name=$2; shift 2
    setsid "$@" </dev/null >>"$dir/log/$name.out" 2>&1 &
    echo $! > "$dir/run/$name.pid"
}

wait_idle() {
    local dir=$1 deadline=$((SECONDS + 30)) states=""
    export SLURM_CONF="$dir/slurm.conf"
    while [ $SECONDS -lt $deadline ]; do
        states=$(sinfo -h -N -o '%N %t' 2>/dev/null | sort -u || true)
        if [ "$(echo "$states" | grep -c ' idle$' || true)" -eq ${#NODES[@]} ]; then
            return 0
        fi
        sleep 0.2
    done
    echo "slurm-local.sh: nodes not idle after 30 s (sinfo: ${states:-no answer})" >&2
    tail -n 5 "$dir"/log/*.log >&2 || true
    return 1
}

# Runs a trivial job and waits for it to complete. Why: slurmctld reports idle nodes about 3 s before
# its scheduler starts; a probe makes `start` return only once jobs really run (and proves munge
# credentials and slurmstepd work).
wait_probe() {
    local dir=$1 deadline=$((SECONDS + 30)) job state=""
    export SLURM_CONF="$dir/slurm.conf"
    job=$(cd "$dir" && sbatch --parsable --job-name=probe --output=/dev/null --wrap true) || return 1
    while [ $SECONDS -lt $deadline ]; do
        state=$(squeue -h --states=all -j "$job" -o '%T' 2>/dev/null || true)
        [ "$state" = COMPLETED ] && return 0
        sleep 0.1
    done
    echo "slurm-local.sh: probe job $job not completed after 30 s (state: ${state:-unknown})" >&2
    return 1
}

cmd_start() {
    local dir; dir=$(state_dir "${1:-}")
    for tool in slurmctld slurmd munged sinfo; do
        command -v "$tool" >/dev/null 2>&1 || die "$tool not found; run: scripts/slurm-local.sh install"
    done
    if pid_alive "$(cat "$dir/run/slurmctld.pid" 2>/dev/null || true)"; then
        die "a cluster already runs in $dir; run: scripts/slurm-local.sh stop $dir"
    fi
    mkdir -p "$dir/state" "$dir/run" "$dir/log"
    local node
    for node in "${NODES[@]}"; do mkdir -p "$dir/spool/$node"; done
    write_conf "$dir"
    start_munge "$dir"
    # -i: ignore saved state of an earlier cluster in DIR (a fresh start every time).
    start_daemon "$dir" slurmctld slurmctld -D -i -f "$dir/slurm.conf"
    for node in "${NODES[@]}"; do
        start_daemon "$dir" "slurmd-$node" slurmd -D -N "$node" -f "$dir/slurm.conf"
    done
    if ! wait_idle "$dir" || ! wait_probe "$dir"; then
        cmd_stop "$dir" >/dev/null 2>&1 || true
        die "cluster in $dir did not come up; logs are in $dir/log"
    fi
    echo "slurm-local.sh: cluster up in $dir (nodes ${NODES[*]}); run: eval \"\$(scripts/slurm-local.sh env $dir)\""
}

cmd_env() {
    local dir; dir=$(state_dir "${1:-}")
    [ -f "$dir/slurm.conf" ] || die "no cluster in $dir; run: scripts/slurm-local.sh start $dir"
    echo "export SLURM_CONF=$dir/slurm.conf"
}

cmd_status() {
    local dir; dir=$(state_dir "${1:-}")
    [ -f "$dir/slurm.conf" ] || die "no cluster in $dir"
    local f name pid
    for f in "$dir"/run/*.pid; do
        [ -e "$f" ] || continue
        name=$(basename "$f" .pid); pid=$(cat "$f")
        if pid_alive "$pid"; then echo "$name: running (pid $pid)"; else echo "$name: stopped"; fi
    done
    export SLURM_CONF="$dir/slurm.conf"
    sinfo -N -o '%N %t %C' || true
    squeue --states=all -o '%i|%j|%T|%r|%N' || true
}

# Sends SIGTERM to every PID given, waits up to 5 s for all, then SIGKILLs the rest. Why all at once:
# each Slurm daemon takes 1-2 s to exit, and stopping them in turn made `stop` take 7 s.
stop_pids() {
    local pid
    for pid in "$@"; do pid_alive "$pid" && kill -TERM "$pid" 2>/dev/null || true; done
    for _ in $(seq 1 50); do
        local alive=0
        for pid in "$@"; do pid_alive "$pid" && alive=1; done
        [ $alive = 0 ] && return 0
        sleep 0.1
    done
    for pid in "$@"; do pid_alive "$pid" && kill -KILL "$pid" 2>/dev/null || true; done
}

cmd_stop() {
    local dir; dir=$(state_dir "${1:-}")
    [ -d "$dir/run" ] || { echo "slurm-local.sh: nothing runs in $dir"; return 0; }
    # Jobs first: their processes are not children of slurmd and would outlive it.
    if pid_alive "$(cat "$dir/run/slurmctld.pid" 2>/dev/null || true)"; then
        export SLURM_CONF="$dir/slurm.conf"
        local jobs
        jobs=$(squeue -h -t PENDING,RUNNING,SUSPENDED,CONFIGURING,COMPLETING -o '%i' 2>/dev/null || true)
        if [ -n "$jobs" ]; then
            # shellcheck disable=SC2086 # one job id per word
            scancel $jobs 2>/dev/null || true
            for _ in $(seq 1 100); do
                [ -z "$(squeue -h -t RUNNING,COMPLETING -o '%i' 2>/dev/null || true)" ] && break
                sleep 0.1
            done
        fi
    fi
    local pids=() f
    for f in "$dir"/run/*.pid; do
        [ -e "$f" ] && pids+=("$(cat "$f")")
    done
    stop_pids "${pids[@]}"
    rm -f "$dir"/run/*.pid
    echo "slurm-local.sh: stopped the cluster in $dir"
}

case "${1:-}" in
    install) cmd_install ;;
    start) cmd_start "${2:-}" ;;
    env) cmd_env "${2:-}" ;;
    status) cmd_status "${2:-}" ;;
    stop) cmd_stop "${2:-}" ;;
    *) usage ;;
esac
