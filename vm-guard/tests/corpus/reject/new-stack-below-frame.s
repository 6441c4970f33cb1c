# expect: out-of-bounds
# The stack is 512 bytes: fp-520 is below it.
stdw [r10-520], 1
mov r0, 0
exit
