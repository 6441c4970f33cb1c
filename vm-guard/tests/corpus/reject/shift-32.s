# expect: bad-shift
mov32 r0, 1
lsh32 r0, 32
exit
