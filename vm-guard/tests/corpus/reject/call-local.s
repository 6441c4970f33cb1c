# expect: local-call
mov r0, 0
callx 1
exit
mov r0, 1
exit
