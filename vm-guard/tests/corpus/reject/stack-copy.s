# expect: pointer-returned
# r10 as a value leaks a host stack address.
mov r0, r10
exit
