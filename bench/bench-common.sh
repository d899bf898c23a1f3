# Sourced by the bench/*-bench.sh scripts (after `here` is set to the repository): the tools they run.
#   cli  HUNYUAN_CLI, else $here/.build/release/hunyuan-cli, else $here/.build/debug/hunyuan-cli
#   py   PYTHON, else /work/benchvenv/bin/python (torch, diffusers 0.31, transformers 4.46)
cli="${HUNYUAN_CLI:-}"
if [ -z "$cli" ]; then
  if [ -x "$here/.build/release/hunyuan-cli" ]; then cli="$here/.build/release/hunyuan-cli"; else cli="$here/.build/debug/hunyuan-cli"; fi
fi
py="${PYTHON:-/work/benchvenv/bin/python}"

# bench_options "NAME …" ARGS…: each `--NAME VALUE` (NAME one of the list; dashes in it as underscores)
# sets the shell variable NAME; -h / --help prints the script's leading comment block.
bench_options() {
  local names=" $1 " n
  shift
  while [ $# -gt 0 ]; do
    case "$1" in
      -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
      --*)
        n="${1#--}"; n="${n//-/_}"
        if [[ "$names" == *" $n "* ]] && [ $# -ge 2 ]; then printf -v "$n" '%s' "$2"; shift 2
        else echo "unknown argument $1" >&2; exit 1; fi ;;
      *) echo "unknown argument $1" >&2; exit 1 ;;
    esac
  done
}
