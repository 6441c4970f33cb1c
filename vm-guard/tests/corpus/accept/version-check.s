# Refuse a context layout this guard does not know.
ldxw r2, [r1+64]
mov r0, 0
jeq r2, 1, ok
mov r0, 99
ok:
exit
