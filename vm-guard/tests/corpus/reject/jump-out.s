# expect: jump-out-of-range
mov r0, 0
ja +5
exit
