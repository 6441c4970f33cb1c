# expect: uninitialized
# r3 is never written.
mov r0, r3
exit
