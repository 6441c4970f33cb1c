# expect: empty
# Nothing but comments.
