# As clang emits: the last load reuses r1 once the context is no longer needed.
ldxb r2, [r1+0]
mov r0, 0
jne r2, 2, done
ldxw r1, [r1+4]
jne r1, 1, done
mov r0, 22
done:
exit
