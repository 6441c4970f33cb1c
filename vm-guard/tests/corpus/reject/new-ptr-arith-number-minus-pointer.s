# expect: pointer-arith
# 0 - ptr.
mov r0, 0
sub r0, r1
exit
