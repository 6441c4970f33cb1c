# expect: jump-into-lddw
# Jumping onto the second slot of lddw, whose bytes are an immediate, not an instruction.
mov r0, 0
ja +1
lddw r2, 0x100000000
exit
