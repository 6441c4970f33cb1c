# expect: r0-unset
# r0 is set on the fall-through path only.
ldxb r2, [r1+0]
jeq r2, 0, out
mov r0, 1
out:
exit
