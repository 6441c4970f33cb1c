# expect: rbpf-divergence
# rbpf's interpreter computes neg64 as -(x as i64): a panic on i64::MIN under overflow checks.
lddw r0, 0x8000000000000000
neg r0
exit
