# expect: pointer-leak
# A pointer stored across two slots is not a spill.
stxdw [r10-12], r1
mov r0, 0
exit
