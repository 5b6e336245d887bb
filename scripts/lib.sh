# Shell functions the benchmark scripts share (sourced, not run).

# free_port: prints a TCP port of 127.0.0.1 that nothing listens on now, or fails after 100
# tries. It is taken below the kernel's ephemeral range (ip_local_port_range): a port in that
# range may be the local end of an outgoing connection (wrk's, curl's, the database pool's),
# which no listener sees but which makes the server's bind fail with "address already in use".
free_port() {
  local lo=20000 hi=32767 eph p
  if read -r eph _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null && (( eph > lo + 1000 )); then
    hi=$(( eph - 1 ))
  fi
  for _ in $(seq 1 100); do
    p=$(( lo + RANDOM % (hi - lo + 1) ))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return 0; fi
  done
  return 1
}
