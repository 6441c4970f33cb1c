# expect: backward-jump
# A counting loop: the back edge makes termination depend on data.
mov r0, 0
again:
add r0, 1
jlt r0, 10, again
exit
