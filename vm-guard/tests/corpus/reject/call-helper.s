# expect: call-not-allowed
# Helper 1 (bpf_map_lookup_elem in the kernel) is not on the empty allow-list.
mov r0, 0
call 1
exit
