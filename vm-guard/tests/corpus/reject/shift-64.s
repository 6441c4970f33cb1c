# expect: bad-shift
mov r0, 1
lsh r0, 64
exit
