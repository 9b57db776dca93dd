#!/usr/bin/env bash
# Resolve the pinned JVM extensions of jvm/pom.xml into a jars folder with Maven, one profile
# (extension) at a time, so one that cannot be had does not stop the others. Never fails the
# build: where Maven or an artifact is unavailable it prints one line saying which backend
# falls back to the embedded default, and why.
#
#   scripts/resolve-jars.sh [JARS_DIR]        (default: jars)
#   MKTPIPE_SKIP_JARS=1 scripts/resolve-jars.sh   skip resolution (embedded defaults only)
#   MVN=/path/to/mvn MVN_ARGS="-s settings.xml"   another Maven, or a mirror / proxy settings
set -uo pipefail
cd "$(dirname "$0")/.."
POM=jvm/pom.xml
OUT=${1:-jars}
PROFILES=(delta graphframes sparknlp s3 comet)
MVN=${MVN:-mvn}
read -r -a MVN_EXTRA <<< "${MVN_ARGS:-}"
declare -A FALLBACK=(
  [delta]="Delta tables use delta-rs (Spark writes Parquet, deltalake commits)"
  [graphframes]="PageRank uses igraph / DataFrame power iteration; no GraphFrames components or LPA"
  [sparknlp]="sentiment uses the VADER / Spanish lexicon backend"
  [s3]="Spark cannot read or write s3:// paths (local and hdfs:// paths work)"
  [comet]="spark.accelerator has no native engine to use; Spark runs every query on its own"
)

if [ -n "${MKTPIPE_SKIP_JARS:-}" ]; then
  echo "jars: MKTPIPE_SKIP_JARS is set; every capability uses its embedded default"; exit 0
fi
if ! command -v "$MVN" >/dev/null 2>&1; then
  echo "jars: $MVN not found on PATH; embedded defaults: ${FALLBACK[delta]}; ${FALLBACK[graphframes]}; ${FALLBACK[sparknlp]}; ${FALLBACK[s3]}; ${FALLBACK[comet]}"
  exit 0
fi
mkdir -p "$OUT"
# a changed pom invalidates every resolved set
if [ -f "$OUT/.pom.sha" ] && [ "$(cat "$OUT/.pom.sha")" != "$(sha256sum "$POM" | cut -d' ' -f1)" ]; then
  find "$OUT" -mindepth 1 -maxdepth 1 \( -name '*.jar' -o -name '.resolved-*' \) -delete
fi
sha256sum "$POM" | cut -d' ' -f1 > "$OUT/.pom.sha"

for profile in "${PROFILES[@]}"; do
  [ -f "$OUT/.resolved-$profile" ] && continue
  tmp=$(mktemp -d)
  log=$(mktemp)
  if timeout 600 "$MVN" -B -q "${MVN_EXTRA[@]}" -f "$POM" -P "$profile" dependency:copy-dependencies \
       -DoutputDirectory="$tmp" -DincludeScope=runtime >"$log" 2>&1 \
     && compgen -G "$tmp/*.jar" >/dev/null; then
    ls "$tmp" > "$OUT/.resolved-$profile"
    mv "$tmp"/*.jar "$OUT"/
    echo "jars: $profile resolved ($(wc -l < "$OUT/.resolved-$profile") jars in $OUT)"
  else
    why=$(grep -m1 -oE "([a-z0-9_.-]+:){3}[0-9][0-9A-Za-z.+-]* was not found" "$log" \
          || grep -m1 -oE "Unknown host[^)]*|Connect(ion)? (timed out|refused)[^)]*|Could not transfer[^:]*" "$log")
    echo "jars: $profile not resolved (${why:-see: mvn -f $POM -P $profile dependency:copy-dependencies}); ${FALLBACK[$profile]}"
  fi
  rm -rf "$tmp" "$log"
done
exit 0
