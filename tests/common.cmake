ls_add_c_test(test_arena test_arena.c)
