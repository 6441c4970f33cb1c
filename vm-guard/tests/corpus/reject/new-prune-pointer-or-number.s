# expect: pointer-returned
# r2 is a number on one path and the context pointer on the other.
ldxb r2, [r1+0]
jeq r2, 0, ptr
mov r2, 5
ja join
ptr:
mov r2, r1
join:
mov r0, r2
exit
