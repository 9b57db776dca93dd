#!/usr/bin/env bash
# A Spark standalone cluster (one master, one worker) on 127.0.0.1, started from the installed
# pyspark: no Spark download, no Docker.
#
#   scripts/spark-cluster.sh up       start master + worker, wait until the worker registered
#   scripts/spark-cluster.sh down     stop both (executors go with the worker), remove pid files
#   scripts/spark-cluster.sh status   what runs; exit 0 when master and worker both run, else 3
#
# Then submit with the virtualenv's spark-submit, e.g.
#   python scripts/build_pyfiles.py      # dist/mktpipe-pyfiles.zip
#   spark-submit --master spark://127.0.0.1:7077 --py-files dist/mktpipe-pyfiles.zip \
#       jobs/ingest.py --all-dates --env cluster
#
# Settings (environment variables, defaults in brackets):
#   MKTPIPE_CLUSTER_DIR      pid files, logs and the worker's work dir [<repo>/.spark-cluster]
#   MKTPIPE_PYTHON           Python with pyspark + mktpipe's deps [<repo>/.venv/bin/python]
#   SPARK_MASTER_HOST        [127.0.0.1]     SPARK_MASTER_PORT     [7077]
#   SPARK_MASTER_WEBUI_PORT  [8080]          SPARK_WORKER_WEBUI_PORT [8081]
#   SPARK_WORKER_CORES       [2]             SPARK_WORKER_MEMORY   [2g] (for executors)
#   SPARK_DAEMON_MEMORY      heap of the master and worker JVMs themselves [512m]
#   MKTPIPE_CLUSTER_WAIT_S   how long `up` waits for the master and the worker [90]
# `up` and `down` are idempotent: `up` on a running cluster changes nothing.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STATE=${MKTPIPE_CLUSTER_DIR:-$ROOT/.spark-cluster}
PY=${MKTPIPE_PYTHON:-$ROOT/.venv/bin/python}
HOST=${SPARK_MASTER_HOST:-127.0.0.1}
MASTER_PORT=${SPARK_MASTER_PORT:-7077}
MASTER_UI_PORT=${SPARK_MASTER_WEBUI_PORT:-8080}
WORKER_UI_PORT=${SPARK_WORKER_WEBUI_PORT:-8081}
WORKER_CORES=${SPARK_WORKER_CORES:-2}
WORKER_MEMORY=${SPARK_WORKER_MEMORY:-2g}
WAIT_S=${MKTPIPE_CLUSTER_WAIT_S:-90}
MASTER_URL="spark://$HOST:$MASTER_PORT"
UI_URL="http://$HOST:$MASTER_UI_PORT"

MASTER_CLASS=org.apache.spark.deploy.master.Master
WORKER_CLASS=org.apache.spark.deploy.worker.Worker

die() { echo "spark-cluster: $*" >&2; exit 1; }
say() { echo "spark-cluster: $*"; }

python_bin() {
  if [[ -x $PY ]]; then echo "$PY"; return; fi
  command -v python3 >/dev/null || die "no Python: run 'make setup' or set MKTPIPE_PYTHON"
  PY=$(command -v python3)
  echo "$PY"
}

spark_home() {
  local py dir
  py=$(python_bin)
  dir=$("$py" -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))' 2>/dev/null) \
    || die "pyspark is not importable by $py: run 'make setup' or set MKTPIPE_PYTHON"
  [[ -x $dir/bin/spark-class ]] || die "no executable $dir/bin/spark-class in the pyspark install"
  echo "$dir"
}

check_java() {
  if [[ -n ${JAVA_HOME:-} && -x $JAVA_HOME/bin/java ]]; then return; fi
  command -v java >/dev/null || die "Java 17 is required (apt-get install openjdk-17-jre-headless)"
}

# pid of a role (master|worker) if its pid file names a live process of that class, else empty
live_pid() {
  local role=$1 class pid cmd
  [[ $role == master ]] && class=$MASTER_CLASS || class=$WORKER_CLASS
  [[ -f $STATE/$role.pid ]] || return 0
  pid=$(<"$STATE/$role.pid")
  [[ $pid =~ ^[0-9]+$ ]] || return 0
  cmd=$(ps -ww -p "$pid" -o args= 2>/dev/null || true)  # -ww: full line whatever $COLUMNS says
  if [[ $cmd == *"$class"* ]]; then echo "$pid"; fi
}

port_busy() {  # something accepts connections on 127.0.0.1/HOST:$1
  (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null
}

# the master's /json/ status as "status aliveworkers", or nothing if it does not answer
master_json() {
  "$(python_bin)" - "$UI_URL/json/" <<'EOF' 2>/dev/null || true
import json, sys, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1], timeout=3) as resp:
        data = json.load(resp)
    print(data.get("status", "?"), data.get("aliveworkers", 0), data.get("url", "?"))
except Exception:
    pass
EOF
}

log_tail() {
  local role=$1
  echo "---- last lines of $STATE/$role.log ----" >&2
  tail -n 30 "$STATE/$role.log" >&2 2>/dev/null || echo "(no log)" >&2
  echo "----" >&2
}

launch() {  # launch ROLE CLASS ARGS...: background JVM, pid file, log
  local role=$1; shift
  local home
  home=$(spark_home)
  # spark-class ends in `exec java ...`, so $! is the JVM's pid. setsid detaches it from the
  # caller's session (a Ctrl-C in the terminal that ran `up` does not stop the cluster).
  local detach=()
  command -v setsid >/dev/null && detach=(setsid)
  SPARK_HOME=$home nohup ${detach[@]+"${detach[@]}"} "$home/bin/spark-class" "$@" \
    >"$STATE/$role.log" 2>&1 </dev/null &
  echo $! >"$STATE/$role.pid"
}

wait_gone() {  # wait_gone SECONDS TARGET...: poll until kill -0 fails for every target
  local limit=$1 i; shift
  for ((i = 0; i < limit * 2; i++)); do
    kill -0 "$@" 2>/dev/null || return 0
    sleep 0.5
  done
  return 1
}

stop_role() {
  local role=$1 pid pgid
  pid=$(live_pid "$role")
  if [[ -n $pid ]]; then
    pgid=$(ps -o pgid= -p "$pid" 2>/dev/null | tr -d ' ' || true)
    kill -TERM "$pid" 2>/dev/null || true
    if ! wait_gone 20 "$pid"; then
      say "$role (pid $pid) ignored SIGTERM for 20 s; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      wait_gone 5 "$pid" || true
    fi
    # Started with setsid, the daemon leads its own process group, which holds what it
    # launched: a worker's executors and their Python workers. A worker stopped while an
    # application runs can leave an executor behind (it may even start one while shutting
    # down); end the rest of the group too. Never done when the daemon shares the caller's
    # group (no setsid): that group is the caller's own.
    if [[ $pgid == "$pid" ]] && kill -0 -- "-$pgid" 2>/dev/null; then
      say "stopping what the $role left behind (process group $pgid)"
      kill -TERM -- "-$pgid" 2>/dev/null || true
      wait_gone 10 -- "-$pgid" || kill -KILL -- "-$pgid" 2>/dev/null || true
    fi
    say "stopped $role (pid $pid)"
  fi
  rm -f "$STATE/$role.pid"
}

wait_for() {  # wait_for ROLE WHAT CHECK_FUNCTION
  local role=$1 what=$2 check=$3 deadline pid
  deadline=$((SECONDS + WAIT_S))
  while ((SECONDS < deadline)); do
    if "$check"; then return 0; fi
    pid=$(live_pid "$role")
    if [[ -z $pid ]]; then
      echo "spark-cluster: the $role exited before $what" >&2
      log_tail "$role"
      return 1
    fi
    sleep 1
  done
  echo "spark-cluster: $what did not happen within ${WAIT_S}s (MKTPIPE_CLUSTER_WAIT_S)" >&2
  log_tail "$role"
  return 1
}

master_alive() { [[ $(master_json) == ALIVE* ]]; }
worker_registered() {
  local status alive _url
  read -r status alive _url <<<"$(master_json)" || true
  [[ ${status:-} == ALIVE && ${alive:-0} -ge 1 ]]
}

cmd_up() {
  check_java
  local home
  home=$(spark_home)
  mkdir -p "$STATE/work"
  export SPARK_LOCAL_IP=${SPARK_LOCAL_IP:-127.0.0.1}
  PYSPARK_PYTHON=${PYSPARK_PYTHON:-$(python_bin)}
  export PYSPARK_PYTHON
  export SPARK_DAEMON_MEMORY=${SPARK_DAEMON_MEMORY:-512m}

  local master_pid worker_pid
  master_pid=$(live_pid master)
  worker_pid=$(live_pid worker)
  if [[ -n $master_pid && -n $worker_pid ]] && worker_registered; then
    say "already running: master pid $master_pid, worker pid $worker_pid ($MASTER_URL)"
    return 0
  fi

  if [[ -z $master_pid ]]; then
    rm -f "$STATE/master.pid"
    if port_busy "$MASTER_PORT"; then
      die "port $MASTER_PORT on $HOST is already in use by another process (not this" \
          "cluster, state dir $STATE); stop it or set SPARK_MASTER_PORT"
    fi
    if port_busy "$MASTER_UI_PORT"; then
      die "web UI port $MASTER_UI_PORT on $HOST is already in use; set SPARK_MASTER_WEBUI_PORT"
    fi
    say "starting master $MASTER_URL (web UI $UI_URL, Spark from $home)"
    launch master "$MASTER_CLASS" --host "$HOST" --port "$MASTER_PORT" \
      --webui-port "$MASTER_UI_PORT"
    if ! wait_for master "the master answered on $UI_URL/json/" master_alive; then
      stop_role master
      exit 1
    fi
  fi

  if [[ -z $worker_pid ]]; then
    rm -f "$STATE/worker.pid"
    say "starting worker ($WORKER_CORES cores, $WORKER_MEMORY for executors)"
    launch worker "$WORKER_CLASS" "$MASTER_URL" --host "$HOST" --cores "$WORKER_CORES" \
      --memory "$WORKER_MEMORY" --webui-port "$WORKER_UI_PORT" --work-dir "$STATE/work"
  fi
  if ! wait_for worker "the worker registered with the master" worker_registered; then
    stop_role worker
    stop_role master
    exit 1
  fi
  say "up: master $MASTER_URL (pid $(live_pid master)), worker pid $(live_pid worker)," \
      "web UI $UI_URL, logs in $STATE"
}

cmd_down() {
  stop_role worker
  stop_role master
  say "down (state dir $STATE)"
}

cmd_status() {
  local master_pid worker_pid info
  master_pid=$(live_pid master)
  worker_pid=$(live_pid worker)
  echo "master: ${master_pid:+running, pid }${master_pid:-not running}"
  echo "worker: ${worker_pid:+running, pid }${worker_pid:-not running}"
  if [[ -n $master_pid ]]; then
    info=$(master_json)
    if [[ -n $info ]]; then
      read -r status alive url <<<"$info"
      echo "master status: $status, alive workers: $alive, url: $url, web UI: $UI_URL"
    else
      echo "master web UI $UI_URL does not answer"
    fi
  fi
  echo "state dir: $STATE"
  [[ -n $master_pid && -n $worker_pid ]] || return 3
}

case ${1:-} in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  *)
    echo "usage: $0 up|down|status   (see the comment at the top of this script)" >&2
    exit 2
    ;;
esac
