# expect: legacy-packet-load
mov r2, 0
ldindb r2, 4
exit
