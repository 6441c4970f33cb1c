# expect: pointer-compare
# ctx - 8 is outside the context: as an address it may wrap below zero, so comparing it with
# ctx says nothing the verifier can use (as unsigned offsets, -8 > 0 would even prune the
# real path away).
mov r2, r1
sub r2, 8
mov r0, 0
jgt r2, r1, out
ldxdw r0, [r1+4096]
out:
exit
