# expect: pointer-arith
# The distance between context and stack is an address fact.
mov r0, r1
sub r0, r10
exit
