# expect: stack-uninit
# Reading the (never written) stack.
ldxdw r0, [r10-8]
exit
