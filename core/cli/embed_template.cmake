# Turns every file of the plugin template (sdk/template/) into a C array in
# one generated source of libdk, so `dkhost new-plugin` writes a plugin from
# memory, with no files to find beside the binary.
# Usage: cmake -DDIR=<sdk/template> -DOUT=<file.c> -P embed_template.cmake
file(GLOB names RELATIVE ${DIR} ${DIR}/*)
list(SORT names)
set(body "")
set(table "")
set(i 0)
foreach(name IN LISTS names)
  if(IS_DIRECTORY ${DIR}/${name})
    continue()
  endif()
  file(READ ${DIR}/${name} hex HEX)
  string(LENGTH "${hex}" n)
  math(EXPR n "${n} / 2")
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
  string(REGEX REPLACE "((0x[0-9a-f][0-9a-f],){16})" "\\1\n    " bytes "${bytes}")
  string(APPEND body "/* ${name} */\nstatic const unsigned char file_${i}[] = {\n    ${bytes}0x00};\n\n")
  string(APPEND table "    {\"${name}\", (const char *)file_${i}, ${n}},\n")
  math(EXPR i "${i} + 1")
endforeach()
file(WRITE ${OUT}.tmp
  "/* Generated from sdk/template/ by core/cli/embed_template.cmake: do not edit. */\n"
  "#include \"cli/template_files.h\"\n\n"
  "${body}"
  "const dkh_template_file dkh_template_files[] = {\n${table}};\n"
  "const size_t dkh_n_template_files = ${i};\n")
file(RENAME ${OUT}.tmp ${OUT})
