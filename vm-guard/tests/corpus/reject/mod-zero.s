# expect: div-by-zero
mov32 r0, 1
mod32 r0, 0
exit
