# A counting loop (refused as a backward jump before issue 12): exploration follows r0 from
# 0 to 10 and ends.
mov r0, 0
again:
add r0, 1
jlt r0, 10, again
exit
