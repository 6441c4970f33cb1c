# expect: not-a-pointer
# Replacing the context pointer by an arbitrary address.
lddw r1, 0xdeadbeef
ldxdw r0, [r1+0]
exit
