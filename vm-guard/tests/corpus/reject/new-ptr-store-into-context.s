# expect: store
# The context is read-only, through any copy of its pointer.
mov r2, r1
add r2, 8
stw [r2+0], 0
mov r0, 0
exit
