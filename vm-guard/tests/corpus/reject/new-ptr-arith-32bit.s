# expect: pointer-arith
# 32-bit arithmetic truncates an address.
add32 r1, 8
mov r0, 0
exit
