// Compiles tests/support/test_pch.h once for every spillway_add_test target (tests/CMakeLists.txt).
