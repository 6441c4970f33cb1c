# expect: legacy-packet-load
ldabsw 0
exit
