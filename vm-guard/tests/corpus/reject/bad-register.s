# expect: bad-register
# mov r11, 0
# raw: 0x0000000000000bb7 0x0000000000000095
