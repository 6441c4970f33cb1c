# expect: store
# Spilling to the stack is a store too: guards have no stack.
mov r2, 1
stxdw [r10-8], r2
mov r0, 0
exit
