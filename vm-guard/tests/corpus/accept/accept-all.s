# The smallest guard: accept everything.
mov r0, 0
exit
