# bpf_object(NAME SOURCE [DEPENDS files...])
# Compiles SOURCE with clang -target bpf into NAME.bpf.o and generates the
# libbpf skeleton NAME.skel.h with bpftool. Creates the INTERFACE target
# NAME_skel that adds the skeleton's directory to the include path. Every
# header SOURCE includes is a dependency through clang's depfile (a list
# kept by hand missed include/xfp/entry_hash.h, so a changed hash left the
# BPF side on the old one); DEPENDS adds anything else.
find_program(BPF_CLANG NAMES clang-14 clang REQUIRED)
find_program(BPFTOOL NAMES bpftool PATHS /usr/sbin REQUIRED)

set(XFP_BPF_INCLUDES
  -I${PROJECT_SOURCE_DIR}/include
  -I${PROJECT_SOURCE_DIR}/bpf
  -I/usr/include/${CMAKE_LIBRARY_ARCHITECTURE})

function(bpf_object NAME SOURCE)
  cmake_parse_arguments(BO "" "" "DEPENDS" ${ARGN})
  set(out_dir ${CMAKE_BINARY_DIR}/bpf)
  set(obj ${out_dir}/${NAME}.bpf.o)
  set(skel ${out_dir}/${NAME}.skel.h)
  add_custom_command(
    OUTPUT ${obj}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${out_dir}
    COMMAND ${BPF_CLANG} -g -O2 -target bpf -D__TARGET_ARCH_x86 -Wall -Werror
            ${XFP_BPF_INCLUDES} -MD -MF ${obj}.d -c ${CMAKE_CURRENT_SOURCE_DIR}/${SOURCE} -o ${obj}
    DEPENDS ${SOURCE} ${BO_DEPENDS}
    DEPFILE ${obj}.d
    COMMENT "BPF ${NAME}.bpf.o"
    VERBATIM)
  add_custom_command(
    OUTPUT ${skel}
    COMMAND ${BPFTOOL} gen skeleton ${obj} name ${NAME} > ${skel}
    DEPENDS ${obj}
    COMMENT "skeleton ${NAME}.skel.h"
    VERBATIM)
  add_custom_target(${NAME}_skel_gen DEPENDS ${skel})
  add_library(${NAME}_skel INTERFACE)
  add_dependencies(${NAME}_skel ${NAME}_skel_gen)
  target_include_directories(${NAME}_skel INTERFACE ${out_dir})
  set_property(GLOBAL APPEND PROPERTY XFP_BPF_OBJECTS ${obj})
endfunction()
