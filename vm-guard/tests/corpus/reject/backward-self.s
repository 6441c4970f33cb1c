# expect: infinite-loop
# ja -1 jumps to itself forever: the same state comes back unfinished.
mov r0, 0
jeq r0, 0, +1
exit
ja -1
