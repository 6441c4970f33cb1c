# expect: pointer-unbounded
# rbpf leaves the whole register unchanged on mod32 by zero: r2 keeps bit 32.
lddw r2, 0x100000000
ldxb r3, [r1+0]
and r3, 0
mod32 r2, r3
add r1, r2
ldxb r0, [r1+0]
exit
