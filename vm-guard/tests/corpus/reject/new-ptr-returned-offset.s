# expect: pointer-returned
# ctx + 8 is still an address.
mov r0, r1
add r0, 8
exit
