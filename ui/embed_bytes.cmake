# Writes the bytes of IN as a C++ array: spillway::ui::kConfigSchema.
file(READ ${IN} hex HEX)
string(LENGTH "${hex}" n)
math(EXPR size "${n} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
file(WRITE ${OUT} "// Generated from config.proto's descriptor set; do not edit.\n#include <cstddef>\nnamespace spillway::ui {\nextern const unsigned char kConfigSchema[] = {${bytes}};\nextern const std::size_t kConfigSchemaSize = ${size};\n}\n")
