# expect: bad-shift
mov r0, 1
rsh r0, -1
exit
