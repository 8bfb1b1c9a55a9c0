# Embeds serve/data/*.json and serve/web/* into libkeratrack as byte arrays (see serve/assets.h), so
# the program needs no data folder at run time. Regenerated whenever one of those files changes.
file(GLOB KT_ASSET_FILES CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/serve/data/*.json
     ${CMAKE_SOURCE_DIR}/serve/web/*.html ${CMAKE_SOURCE_DIR}/serve/web/*.js ${CMAKE_SOURCE_DIR}/serve/web/*.css)
set(KT_ASSETS_C ${CMAKE_BINARY_DIR}/generated/kt_assets_data.c)
add_custom_command(OUTPUT ${KT_ASSETS_C}
  COMMAND ${CMAKE_COMMAND} -DOUT=${KT_ASSETS_C} -DBASE=${CMAKE_SOURCE_DIR}/serve "-DFILES=${KT_ASSET_FILES}"
          -P ${CMAKE_SOURCE_DIR}/serve/embed_assets.cmake
  DEPENDS ${KT_ASSET_FILES} ${CMAKE_SOURCE_DIR}/serve/embed_assets.cmake
  COMMENT "Embedding serve/data and serve/web files" VERBATIM)
target_sources(keratrack PRIVATE ${KT_ASSETS_C})
