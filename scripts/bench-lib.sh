# shellcheck shell=bash
# Shared helpers for scripts/bench-*: sourced, not run.
#
#   . "$(dirname "${BASH_SOURCE[0]}")/bench-lib.sh"
#   bench_init NAME OUT_DIR "$@"      # after option parsing; OUT_DIR may be empty (the default)
#   python3 - … <<'EOF' | bench_write_md
#   import os; exec(os.environ["BENCH_PY"])   # tsv_header(…), tsv_row(…)
#   …
#   EOF
#
# bench_init sets BENCH_DATE (UTC, at start), BENCH_MACHINE (one line), BENCH_OUT (the output directory, made and
# absolute), BENCH_MD (OUT/NAME.md), BENCH_TSV (OUT/NAME.tsv) and BENCH_HEADER (the line that opens NAME.md:
# `scripts/NAME, DATE, machine: …, args: …`), and exports what the summariser needs (BENCH_TSV, BENCH_DATE,
# BENCH_MACHINE, BENCH_PY). bench_write_md copies its standard input, after BENCH_HEADER and an empty line, to
# standard output and to BENCH_MD.

# bench_machine: one line naming the machine: CPU model, cores, RAM, kernel, OS, and whether the CPU has SHA-NI.
bench_machine() {
  local cpu cores ram_gib kernel os sha
  cpu=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null)
  [ -n "$cpu" ] || cpu=$(awk -F': *' '/^(Hardware|cpu model|Model)[[:space:]]*:/ { print $2; exit }' /proc/cpuinfo 2>/dev/null)
  [ -n "$cpu" ] || cpu=$(uname -m)
  cores=$(nproc 2>/dev/null || echo '?')
  ram_gib=$(awk '/^MemTotal:/ { printf "%.1f", $2 / 1048576; exit }' /proc/meminfo 2>/dev/null)
  kernel=$(uname -r)
  os=$( (. /etc/os-release 2>/dev/null && echo "${PRETTY_NAME:-}") || true)
  [ -n "$os" ] || os=$(uname -s)
  if grep -qw sha_ni /proc/cpuinfo 2>/dev/null; then sha=yes; else sha=no; fi
  echo "${cpu//[$'\t']/ }, ${cores} cores, ${ram_gib:-?} GiB RAM, Linux ${kernel}, ${os}, sha_ni: ${sha}"
}

# bench_date: the current UTC date and time, to the minute.
bench_date() { date -u '+%Y-%m-%d %H:%M UTC'; }

# bench_out_dir DIR: makes DIR (default: ${CARGO_TARGET_DIR:-ROOT/target}/bench, ROOT being the workspace) and
# prints its absolute path.
bench_out_dir() {
  local dir=${1:-}
  if [ -z "$dir" ]; then
    local root
    root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
    dir="${CARGO_TARGET_DIR:-$root/target}/bench"
  fi
  mkdir -p "$dir" && (cd "$dir" && pwd)
}

# bench_init NAME OUT_DIR ARGS...: see the top of this file.
bench_init() {
  local name=$1 dir=$2
  shift 2
  BENCH_NAME=$name
  BENCH_DATE=$(bench_date)
  BENCH_MACHINE=$(bench_machine)
  BENCH_OUT=$(bench_out_dir "$dir") || { echo "cannot create the output directory ${dir:-(default)}" >&2; exit 2; }
  BENCH_MD="$BENCH_OUT/$name.md"
  BENCH_TSV="$BENCH_OUT/$name.tsv"
  BENCH_HEADER="scripts/$name, $BENCH_DATE, machine: $BENCH_MACHINE, args: ${*:-(none)}"
  # Writable now rather than after a long run.
  : > "$BENCH_MD" && : > "$BENCH_TSV" || exit 2
  export BENCH_NAME BENCH_TSV BENCH_DATE BENCH_MACHINE BENCH_PY
}

# bench_write_md: standard input, after BENCH_HEADER, to standard output and BENCH_MD.
bench_write_md() {
  { echo "$BENCH_HEADER"; echo; cat; } | tee "$BENCH_MD"
  echo "wrote $BENCH_MD and $BENCH_TSV" >&2
}

# Python helpers for the summarisers (exec'd from the environment): tsv_header(*columns) starts BENCH_TSV with the
# columns plus `date` and `machine`; tsv_row(*values) appends a row (None is empty, floats get 3 decimals), each
# with BENCH_DATE and BENCH_MACHINE.
BENCH_PY=$(cat <<'PYEOF'
import os as _os
_tsv = {"file": None}
def _tsv_cell(v):
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.3f}"
    return str(v).replace("\t", " ").replace("\n", " ")
def tsv_header(*columns):
    _tsv["file"] = open(_os.environ["BENCH_TSV"], "w") if _os.environ.get("BENCH_TSV") else None
    if _tsv["file"]:
        _tsv["file"].write("\t".join(list(columns) + ["date", "machine"]) + "\n")
def tsv_row(*values):
    if _tsv["file"]:
        cells = [_tsv_cell(v) for v in values] + [_os.environ.get("BENCH_DATE", ""), _os.environ.get("BENCH_MACHINE", "")]
        _tsv["file"].write("\t".join(_tsv_cell(c) for c in cells) + "\n")
        _tsv["file"].flush()
PYEOF
)
