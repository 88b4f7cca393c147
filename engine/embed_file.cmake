# Turns a text file into a C++ source defining `const char NAME[]`.
# Usage: cmake -DINPUT=... -DOUTPUT=... -DNAMESPACE=... -DSYMBOL=... -P embed_file.cmake
file(READ "${INPUT}" content)
set(delim "spw_embed")
file(WRITE "${OUTPUT}.tmp"
  "// Generated from ${INPUT}; do not edit.\n"
  "namespace ${NAMESPACE} {\nextern const char ${SYMBOL}[];\n"
  "const char ${SYMBOL}[] = R\"${delim}(${content})${delim}\";\n}\n")
file(COPY_FILE "${OUTPUT}.tmp" "${OUTPUT}" ONLY_IF_DIFFERENT)
