# expect: r0-unset
exit
