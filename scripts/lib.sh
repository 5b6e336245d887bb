# Shell functions the benchmark scripts share (sourced, not run).

# free_port: prints a TCP port of 127.0.0.1 that nothing listens on now (20000-59999), or fails
# after 100 tries.
free_port() {
  local p
  for _ in $(seq 1 100); do
    p=$(( 20000 + RANDOM % 40000 ))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return 0; fi
  done
  return 1
}
