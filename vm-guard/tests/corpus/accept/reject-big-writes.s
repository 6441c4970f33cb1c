# Refuse WRITE entries longer than 4 KiB with code 20.
ldxb r2, [r1+0]
mov r0, 0
jne r2, 2, done
ldxw r3, [r1+24]
jle r3, 4096, done
mov r0, 20
done:
exit
