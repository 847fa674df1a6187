# embed.cmake -- turn a file into a C header holding it as a byte array.
# Usage: cmake -DIN=file -DOUT=header -DNAME=symbol -P embed.cmake
# Produces: static const unsigned char NAME[] = {...}; static const size_t NAME_len;
file(READ "${IN}" hex HEX)
string(LENGTH "${hex}" hexlen)
math(EXPR nbytes "${hexlen} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," body "${hex}")
# Break the initializer into lines of 16 bytes (80 characters).
string(REGEX REPLACE "((0x[0-9a-f][0-9a-f],){16})" "\\1\n    " body "${body}")
file(WRITE "${OUT}.tmp"
     "/* Generated from ${IN} by src/http/embed.cmake. Do not edit. */\n"
     "static const unsigned char ${NAME}[] = {\n    ${body}\n};\n"
     "static const size_t ${NAME}_len = ${nbytes};\n")
file(RENAME "${OUT}.tmp" "${OUT}")
