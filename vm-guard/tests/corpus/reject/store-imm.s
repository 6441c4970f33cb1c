# expect: store
mov r0, 0
stw [r1+24], 4096
exit
