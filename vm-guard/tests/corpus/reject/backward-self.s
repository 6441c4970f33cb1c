# expect: backward-jump
# ja -1 jumps to itself forever.
mov r0, 0
ja -1
exit
